"""The analytics notebooks run top to bottom on a small demo database; any error in any cell,
or a notebook's own check of its data, fails the test."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from flows.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["funnel", "ab_test", "timing"]


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return notebook


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """One small demo campaign, on the session's Prefect test server when one is up, else on
    run_demo's own."""
    path = tmp_path_factory.mktemp("notebooks") / "demo.db"
    run_demo(leads=40, days=3, db_path=path)
    return path


@pytest.fixture(scope="module")
def executed(demo_db) -> dict[str, nbformat.NotebookNode | BaseException]:
    """The three notebooks on the demo database at once, each in its own kernel."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UYSP_SQLITE_PATH", str(demo_db))
        patch.setenv("MPLBACKEND", "Agg")
        with ThreadPoolExecutor(len(NOTEBOOKS)) as pool:
            futures = {name: pool.submit(execute, name) for name in NOTEBOOKS}
    return {name: future.exception() or future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_on_the_demo_database(name, executed, demo_db):
    notebook = executed[name]
    if isinstance(notebook, BaseException):
        raise notebook
    printed = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert f"{demo_db}: " in printed  # it read the demo database, not a default one
