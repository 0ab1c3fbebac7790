"""Chooses the adapter for each port from settings."""

from __future__ import annotations

from integrations.clock import SystemClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.sandbox_sms import SandboxGateway
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from uysp.ports import Clock, Services
from uysp.settings import Settings


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    db = SqliteDatabase(settings.sqlite_path)
    if settings.store != "sqlite":
        raise NotImplementedError(f"UYSP_STORE={settings.store} is not available yet")
    if settings.sms != "sandbox":
        raise NotImplementedError(f"UYSP_SMS={settings.sms} is not available yet")
    if settings.links != "local":
        raise NotImplementedError(f"UYSP_LINKS={settings.links} is not available yet")
    if settings.notify != "console":
        raise NotImplementedError(f"UYSP_NOTIFY={settings.notify} is not available yet")
    return Services(
        store=SqliteStore(db),
        gateway=SandboxGateway(db, clock, starting_credits=settings.sandbox_credits),
        shortener=LocalShortener(db, clock, settings.link_base_url),
        notifier=ConsoleNotifier(),
        clock=clock,
        lock=SqliteRunLock(db),
    )
