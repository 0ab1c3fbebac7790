"""Flow tests share one Prefect test server for the whole session (it takes ~10 s to start)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.settings import (
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED,
    temporary_settings,
)
from prefect.testing.utilities import prefect_test_harness

from tasks.runtime import using
from uysp.ports import Services
from uysp.settings import get_settings

# On the harness's SQLite the task-run recorder's writes collide with the next flow run's
# insert ("database is locked" -> 503 -> a 2 s client back-off on every run). Flow tests read
# our ledger and artifacts, not task-run records, so the recorder is off here.
HARNESS_SETTINGS = {
    PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
    PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED: False,
}


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[None]:
    with temporary_settings(HARNESS_SETTINGS), prefect_test_harness():
        yield


@pytest.fixture
def config(monkeypatch, tmp_path):
    """Process settings for one test: UYSP_* variables set here win, then the cache is reset."""

    def configure(**values) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"UYSP_{name.upper()}", str(value))
        get_settings.cache_clear()

    monkeypatch.setenv("UYSP_SQLITE_PATH", str(tmp_path / "uysp.db"))
    get_settings.cache_clear()
    yield configure
    get_settings.cache_clear()


@pytest.fixture
def installed(services: Services, config) -> Iterator[Services]:
    with using(services):
        yield services
