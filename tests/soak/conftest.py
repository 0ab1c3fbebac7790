"""The soak: a short form in `make test`, the week in `make soak` (SOAK=week). SOAK_SEED=<n>
replays a seed; without it each soak draws its own and prints it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: a campaign under injected faults (tests/soak)")
