"""`uysp demo`: a short simulated campaign end to end, judged from the outbox."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from uysp.cli import app


def test_demo_json_reports_a_campaign_with_no_violations(tmp_path):
    result = CliRunner().invoke(
        app, ["demo", "--leads", "80", "--days", "5", "--json", "--db", str(tmp_path / "d.db")]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("leads", "sent", "by_step", "stopped", "booked", "held_by_gate", "wall_seconds"):
        assert key in report
    assert report["leads"] == 80
    assert report["sent"] > 80  # step 1 for most leads, and follow-ups
    assert set(report["by_step"]) >= {"1", "2"}
    bad_rows = {"phone_invalid", "not_us_canada", "missing_name", "current_client", "archived"}
    assert bad_rows & set(report["held_by_gate"])
    assert report["duplicate_sends"] == 0
    assert report["quiet_hour_violations"] == 0
    assert report["after_stop_sends"] == 0


def test_demo_refuses_an_existing_database(tmp_path):
    existing = tmp_path / "d.db"
    existing.write_text("")
    result = CliRunner().invoke(app, ["demo", "--json", "--db", str(existing)])
    assert result.exit_code != 0
    assert "fresh file" in str(result.exception)
