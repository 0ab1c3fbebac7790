"""A Prefect server and process workers on loopback, started the way an operator starts them:
`prefect server start` with its own home and SQLite database, `prefect worker start`, and the
CLI for the rest. Each process runs in its own process group with its output in a log file, so
the test can stop it and everything it started, and show the logs when something fails."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.simpletexting import SimpleTextingFake

ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect", "--no-prompt"]
PROVIDER_RATE = 10  # requests per second the SimpleTexting fake allows in any 1-second window
ADAPTER_RATE = 8  # the adapters' pace across workers, with headroom for timing jitter


def flow_run_env(db_path: Path, simpletexting: SimpleTextingFake) -> dict[str, str]:
    """What the workers pass on to their flow runs: the SimpleTexting fake, one shared SQLite
    file (one machine), and the Prefect limits for the send lock and the pace."""
    return {
        "UYSP_STORE": "sqlite",
        "UYSP_SQLITE_PATH": str(db_path),
        "UYSP_SMS": "simpletexting",
        "UYSP_SIMPLETEXTING_API_URL": simpletexting.api_url,
        "UYSP_SIMPLETEXTING_TOKEN": simpletexting.token,
        "UYSP_SIMPLETEXTING_ACCOUNT_PHONE": next(iter(simpletexting.account_phones)),
        "UYSP_SIMPLETEXTING_RATE_PER_SECOND": str(ADAPTER_RATE),
        "UYSP_RUN_LOCK": "prefect",
        "UYSP_NOTIFY": "console",
        "PREFECT_WORKER_QUERY_SECONDS": "1",
        "PREFECT_RUNNER_AUTO_INSTALL_DEPENDENCIES": "false",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to the process group (the worker's flow-run processes too), then SIGKILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def log(self, tail: int = 80) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join([f"----- {self.name} (last {tail} lines)", *lines[-tail:]])


class Cluster:
    """One server and any number of workers under `home`; `env` is what a client of this
    server needs (the CLI, the workers and, through them, the flow runs)."""

    def __init__(self, home: Path, worker_env: dict[str, str]) -> None:
        self.home = home
        self.url = f"http://127.0.0.1:{free_port()}/api"
        self.env = os.environ | {
            "PREFECT_HOME": str(home / "client"),
            "PREFECT_API_URL": self.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
        }
        self.worker_env = self.env | worker_env
        self.processes: list[Process] = []

    def start_server(self, timeout: float = 90) -> None:
        port = self.url.split(":")[-1].split("/")[0]
        env = {k: v for k, v in self.env.items() if k != "PREFECT_API_URL"} | {
            "PREFECT_HOME": str(self.home / "server"),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.home}/prefect.db",
            # Only the runs the test starts: no scheduled runs from the deployments' schedules.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
            # On SQLite the recorder's writes collide with flow-run inserts (503, 2 s back-off).
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
        args = [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", port]
        server = self.start("server", args, env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                raise RuntimeError(f"prefect server exited\n{server.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"prefect server not healthy after {timeout} s\n{server.log()}")

    def start_worker(self, name: str, pool: str) -> Process:
        args = [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"]
        return self.start(name, [*args, "--name", name, "--limit", "1"], self.worker_env)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        process = Process(name, args, env, self.home)
        self.processes.append(process)
        return process

    def cli(self, *args: str, timeout: float = 180) -> str:
        """Run a `prefect` command against the server; its output, or an error showing it."""
        done = subprocess.run(
            [*PREFECT, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(f"prefect {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs(self) -> str:
        return "\n".join(process.log() for process in self.processes)
