"""The adapters the tasks of this process use: built from settings on first use, or installed
by the demo and the tests (a simulated clock, a sandbox told to fail)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from uysp.ports import Services

_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    global _services
    with _lock:
        if _services is None:
            from integrations.factory import build_services
            from uysp.settings import get_settings

            _services = build_services(get_settings())
        return _services


@contextmanager
def using(bundle: Services) -> Iterator[Services]:
    """Run the flows of this process on these adapters until the block ends."""
    global _services
    with _lock:
        previous, _services = _services, bundle
    try:
        yield bundle
    finally:
        with _lock:
            _services = previous
