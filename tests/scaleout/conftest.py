"""The scale-out test's cluster and fakes. It runs in `make test` with the rest; `-m scaleout`
runs it alone, `-m "not scaleout"` skips it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.simpletexting import SimpleTextingFake
from tests.fakes.slack import SlackFake
from tests.scaleout.cluster import PROVIDER_RATE, Cluster, flow_run_env


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scaleout: a Prefect server with workers (~2 minutes)")


@pytest.fixture
def simpletexting() -> Iterator[SimpleTextingFake]:
    with SimpleTextingFake(rate_limit=PROVIDER_RATE) as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[SlackFake]:
    with SlackFake() as fake:
        yield fake


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "uysp.db"


@pytest.fixture
def cluster(tmp_path: Path, db_path: Path, simpletexting: SimpleTextingFake) -> Iterator[Cluster]:
    """A server on loopback; the workers' flow runs use the fakes and one SQLite file."""
    cluster = Cluster(tmp_path, flow_run_env(db_path, simpletexting))
    try:
        cluster.start_server()
        yield cluster
    finally:
        cluster.stop()
        print(cluster.logs())  # shown only when the test fails
