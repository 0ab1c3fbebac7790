"""The Prefect global concurrency limits that pace every worker together (see pacing.Pacer).

Each provider's limit is a rate limit: one slot, decaying at the provider's rate, so at most
`rate` requests per second go out across all processes and never a burst above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext

from prefect import get_client
from prefect.client.orchestration import SyncPrefectClient

from uysp.ports import SEND_LOCK
from uysp.settings import Settings, get_settings

AIRTABLE_REQUESTS_PER_SECOND = 5  # Airtable's documented limit per base


def provider_rates(settings: Settings) -> dict[str, float]:
    """Requests per second for each provider: the numbers the adapters are built with."""
    return {
        "simpletexting": settings.simpletexting_rate_per_second,
        "switchy": settings.switchy_links_per_hour / 3600,
        "slack": settings.slack_rate_per_second,
        "airtable": AIRTABLE_REQUESTS_PER_SECOND,
    }


def ensure_prefect_limits(
    client: SyncPrefectClient | None = None, *, rates: Mapping[str, float] | None = None
) -> list[str]:
    """Create the providers' rate limits and the scheduler's send lock, or bring existing ones
    to the configured values; running it again changes nothing. Returns the limits' names."""
    rates = provider_rates(get_settings()) if rates is None else rates
    with nullcontext(client) if client is not None else get_client(sync_client=True) as prefect:
        for name, rate in rates.items():
            prefect.upsert_global_concurrency_limit_by_name(
                name, limit=1, slot_decay_per_second=rate
            )
        prefect.upsert_global_concurrency_limit_by_name(SEND_LOCK, limit=1)
    return [*rates, SEND_LOCK]
