"""The soak's two product processes, each started, killed with SIGKILL and started again by
the orchestrator: the scheduler (one run per request) and the webhook receiver."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.soak.scheduler_worker import READY, RESULT

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Child:
    """One process at a time under a name; its output is appended to one log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    def _spawn(self, stdin: int | None = None, stdout: int | None = None) -> subprocess.Popen:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"----- start {self.starts}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [sys.executable, *self.args],
                cwd=ROOT,
                env=self.env,
                stdin=stdin,
                stdout=stdout if stdout is not None else log,
                stderr=log,
                start_new_session=True,
            )
        return self.popen

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen and self.popen.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def kill(self) -> bool:
        """SIGKILL, as the OOM killer or a lost host would; False if it was not running."""
        if self.popen is None or self.popen.poll() is not None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)
        return True

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join([f"----- {self.name} (last {lines} lines)", *tail])


class SchedulerProcess(_Child):
    """tests.soak.scheduler_worker: `run` hands it one run, `result` waits for its summary or
    its death."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "scheduler") -> None:
        super().__init__(name, ["-m", "tests.soak.scheduler_worker"], env, log_dir)
        self._lines: queue.Queue[str] = queue.Queue()
        self._ended = threading.Event()
        self._ready = False

    def spawn(self) -> None:
        """Start a process; `ready` waits for it to be able to run."""
        popen = self._spawn(stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._lines, self._ended, self._ready = queue.Queue(), threading.Event(), False
        threading.Thread(
            target=self._read, args=(popen, self._lines, self._ended), daemon=True
        ).start()

    def ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready:
            line = self._next(deadline)
            self._ready = line == READY
            if line is None and (self._ended.is_set() or time.monotonic() > deadline):
                raise RuntimeError(f"the scheduler process did not start\n{self.log_tail()}")

    def start(self) -> None:
        self.spawn()
        self.ready()

    def run(self, **params: Any) -> None:
        self.ready()
        assert self.popen is not None and self.popen.stdin is not None
        self.popen.stdin.write((json.dumps(params) + "\n").encode())
        self.popen.stdin.flush()

    def result(self, timeout: float) -> dict[str, Any] | None:
        """The run's summary; None when the process died first."""
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = self._ended.is_set()  # before the read: then every line is queued
            line = self._next(deadline)
            if line is None and ended:
                self.popen.wait(30)  # its output ended: it is dead, or about to be
                return None
            if line is not None and line.startswith(RESULT):
                return json.loads(line.removeprefix(RESULT))
        self.popen.send_signal(signal.SIGUSR1)  # its threads' stacks, into the log
        time.sleep(1)
        raise TimeoutError(f"no scheduler result within {timeout} s\n{self.log_tail(400)}")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            assert self.popen.stdin is not None
            self.popen.stdin.close()
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def _next(self, deadline: float) -> str | None:
        """The next line of output; None when there is none for now (or ever)."""
        try:
            return self._lines.get(timeout=min(max(deadline - time.monotonic(), 0.01), 0.5))
        except queue.Empty:
            return None

    def _read(self, popen: subprocess.Popen, lines: queue.Queue[str], ended: threading.Event):
        assert popen.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in popen.stdout:
                log.write(raw)
                log.flush()
                lines.put(raw.decode(errors="replace").rstrip("\n"))
        ended.set()


class ReceiverProcess(_Child):
    """tests.soak.receiver_worker on a fixed port, so the senders' URL outlives a restart."""

    def __init__(self, env: dict[str, str], log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["-m", "tests.soak.receiver_worker", str(self.port)]
        super().__init__("receiver", args, env, log_dir)

    def spawn(self) -> None:
        self._spawn()

    def ready(self, timeout: float = 120) -> None:
        popen = self.popen
        assert popen is not None
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise RuntimeError(f"the receiver exited\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the receiver did not start\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)

    def start(self) -> None:
        self.spawn()
        self.ready()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
