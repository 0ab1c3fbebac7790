"""A campaign under faults keeps every promise: nobody texted twice for a step, after a STOP, a
reply or a booking, or outside their hours; no webhook lost or worked twice; the leads, the
ledger and the provider agree. Every kind of fault must have fired, or the soak proves nothing.

The short form runs in `make test`; `make soak` (SOAK=week) runs the week. SOAK_SEED replays.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from tests.soak.campaign import SHORT, WEEK, run_soak

FORM = WEEK if os.environ.get("SOAK") == "week" else SHORT

pytestmark = [pytest.mark.soak, pytest.mark.timeout(3 * 3600 if FORM is WEEK else 600)]


def test_a_campaign_under_faults_keeps_every_promise(tmp_path, capsys, pytestconfig):
    seed = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(10**6))
    replay = f"soak ({FORM.name}), seed {seed}: replay with SOAK_SEED={seed}"
    live = pytestconfig.getoption("capture") == "no"  # -s, as make soak runs it

    def show(line: str, always: bool = False) -> None:
        """The seed and the result always show; progress with -s, else only on failure."""
        if always or live:
            with capsys.disabled():
                print(line, flush=True)
        else:
            print(line)

    show(f"\n{replay}", always=True)
    result = run_soak(FORM, seed, tmp_path, log=show)
    show(json.dumps(result, default=str), always=True)

    violated = {name: n for name, n in result["invariants"].items() if n}
    assert violated == {}, f"{replay}\n{json.dumps(result['details'], indent=1, default=str)}"
    assert [kind for kind, n in result["faults"].items() if not n] == [], replay
