"""Process configuration: `UYSP_*` environment variables and `.env`, validated by pydantic.

Which adapter serves each port is chosen here; every API base URL can be overridden, which is how
tests and benchmarks point the real adapters at the loopback fakes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from uysp.ingest_rules import DEFAULT_CLIENT_TAG_PATTERNS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="UYSP_", env_file=".env", extra="ignore")

    # Backends
    store: Literal["sqlite", "airtable"] = "sqlite"
    sms: Literal["sandbox", "simpletexting"] = "sandbox"
    links: Literal["local", "switchy"] = "local"
    notify: Literal["console", "slack"] = "console"

    # Embedded defaults
    sqlite_path: Path = Path("uysp.db")
    link_base_url: str = "http://127.0.0.1:8787/l"
    sandbox_credits: float = 100_000

    # Airtable
    airtable_token: SecretStr | None = None
    airtable_base_id: str | None = None
    airtable_api_url: str = "https://api.airtable.com"
    airtable_leads_table: str = "Leads"
    airtable_settings_table: str = "Settings"
    airtable_templates_table: str = "SMS_Templates"
    airtable_audit_table: str = "SMS_Audit"
    airtable_requests_per_second: float = Field(
        5.0, gt=0, le=5, description="Airtable requests/s per base, per process"
    )
    airtable_rate_limit_wait_seconds: float = Field(
        30.0, ge=0, description="wait after an Airtable 429, then retry"
    )
    airtable_stop_check_seconds: float = Field(
        5.0, ge=0, description="staleness bound of stop flags checked before each send"
    )

    # SimpleTexting
    simpletexting_token: SecretStr | None = None
    simpletexting_api_url: str = "https://api-app2.simpletexting.com/v2"
    simpletexting_account_phone: str | None = None
    simpletexting_webhook_token: SecretStr | None = None
    simpletexting_rate_per_second: float = Field(10, gt=0, description="requests/s, all workers")
    simpletexting_contact_batch_size: int = Field(
        100, ge=1, le=500, description="contact names per batch write; 1 = upsert before each send"
    )

    # Switchy
    switchy_token: SecretStr | None = None
    switchy_api_url: str = "https://api.switchy.io"
    switchy_graphql_url: str = "https://graphql.switchy.io/v1/graphql"
    switchy_domain: str = "hi.switchy.io"
    switchy_links_per_hour: float = Field(3600, gt=0)
    switchy_fallback: Literal["none", "local"] = "none"

    # Slack
    slack_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_channel_alerts: str = "#uysp-alerts"
    slack_channel_daily: str = "#uysp-daily"
    slack_channel_sales: str = "#uysp-sales"
    slack_rate_per_second: float = Field(1, gt=0)

    # Webhook receiver, as the health check reaches it
    webhook_url: str = "http://127.0.0.1:8787"

    # Ingestion: tags that mark a current coaching client (regular expressions)
    client_tag_patterns: tuple[str, ...] = DEFAULT_CLIENT_TAG_PATTERNS

    # Calendly
    calendly_signing_key: SecretStr | None = None

    # Scheduler policy
    chunk_size: int = Field(100, ge=1, le=1000, description="leads per send task run")
    send_concurrency: int = Field(4, ge=1, le=32, description="provider calls in flight per chunk")
    parallel_chunks: int = Field(2, ge=1, le=8, description="chunk task runs in flight per run")
    credit_floor: float = Field(0, ge=0, description="no sending below this credit balance")
    credit_alert_below: float = Field(1000, ge=0, description="alert when the balance is lower")
    error_rate_pause: float = Field(0.05, gt=0, le=1)
    error_rate_min_attempts: int = Field(20, ge=1)
    reconcile_grace_seconds: float = Field(
        120, ge=0, description="a Reserved row younger than this is not yet judged"
    )
    run_lock_ttl_seconds: float = Field(3600, gt=0)
    run_lock: Literal["auto", "sqlite", "prefect"] = Field(
        "auto", description="auto: the Prefect limit when a server is configured, else SQLite"
    )
    campaign_timezone: str = "America/New_York"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
