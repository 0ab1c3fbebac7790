"""Chooses the adapter for each port from settings."""

from __future__ import annotations

from pydantic import SecretStr

from integrations.clock import SystemClock
from integrations.console import ConsoleNotifier
from integrations.local_links import LocalShortener
from integrations.pacing import prefect_server_configured
from integrations.prefect_lock import PrefectRunLock
from integrations.sandbox_sms import SandboxGateway
from integrations.simpletexting import SimpleTextingGateway
from integrations.slack import SlackNotifier
from integrations.sqlite_store import SqliteDatabase, SqliteRunLock, SqliteStore
from integrations.switchy import SwitchyShortener
from uysp.ports import (
    Clock,
    LeadStore,
    LinkShortener,
    Notifier,
    RunLock,
    Services,
    SmsGateway,
)
from uysp.settings import Settings


def _secret(value: SecretStr | None, variable: str) -> str:
    if value is None:
        raise ValueError(f"{variable} is required")
    return value.get_secret_value()


def build_store(settings: Settings, db: SqliteDatabase) -> LeadStore:
    if settings.store == "airtable":
        from integrations.airtable import AirtableStore

        if not settings.airtable_base_id:
            raise ValueError("UYSP_AIRTABLE_BASE_ID is required")
        return AirtableStore.from_settings(settings)
    return SqliteStore(db)


def build_gateway(settings: Settings, db: SqliteDatabase, clock: Clock) -> SmsGateway:
    if settings.sms == "simpletexting":
        if not settings.simpletexting_account_phone:
            raise ValueError("UYSP_SIMPLETEXTING_ACCOUNT_PHONE is required")
        return SimpleTextingGateway(
            _secret(settings.simpletexting_token, "UYSP_SIMPLETEXTING_TOKEN"),
            settings.simpletexting_account_phone,
            api_url=settings.simpletexting_api_url,
            rate_per_second=settings.simpletexting_rate_per_second,
            contact_batch_size=settings.simpletexting_contact_batch_size,
        )
    return SandboxGateway(db, clock, starting_credits=settings.sandbox_credits)


def build_shortener(settings: Settings, db: SqliteDatabase, clock: Clock) -> LinkShortener:
    local = LocalShortener(db, clock, settings.link_base_url)
    if settings.links == "switchy":
        return SwitchyShortener(
            _secret(settings.switchy_token, "UYSP_SWITCHY_TOKEN"),
            domain=settings.switchy_domain,
            api_url=settings.switchy_api_url,
            graphql_url=settings.switchy_graphql_url,
            links_per_hour=settings.switchy_links_per_hour,
            fallback=local if settings.switchy_fallback == "local" else None,
        )
    return local


def build_notifier(settings: Settings) -> Notifier:
    if settings.notify == "slack":
        return SlackNotifier(
            _secret(settings.slack_token, "UYSP_SLACK_TOKEN"),
            channels={
                "alerts": settings.slack_channel_alerts,
                "daily": settings.slack_channel_daily,
                "sales": settings.slack_channel_sales,
            },
            api_url=settings.slack_api_url,
            rate_per_second=settings.slack_rate_per_second,
        )
    return ConsoleNotifier()


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """The embedded file (run lock, local links, sandbox outbox, and the store when SQLite) is
    always opened: the run lock lives there on a single machine."""
    clock = clock or SystemClock()
    db = SqliteDatabase(settings.sqlite_path)
    return Services(
        store=build_store(settings, db),
        gateway=build_gateway(settings, db, clock),
        shortener=build_shortener(settings, db, clock),
        notifier=build_notifier(settings),
        clock=clock,
        lock=build_lock(settings, db),
    )


def build_lock(settings: Settings, db: SqliteDatabase) -> RunLock:
    """Several workers need the Prefect limit (`uysp setup prefect` creates it); one machine
    without a server uses the lease in the SQLite file."""
    use_prefect = settings.run_lock == "prefect" or (
        settings.run_lock == "auto" and prefect_server_configured()
    )
    return PrefectRunLock() if use_prefect else SqliteRunLock(db)
