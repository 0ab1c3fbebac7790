"""One chunk of planned sends as a pipeline, so the tightest provider is never left waiting.

The chunk goes out in waves of ten, Airtable's batch size. While a wave's texts are with the SMS
provider, the next wave's tracking links are being created and its ledger rows reserved in one
store write, and a recorder thread writes finished waves' outcomes and lead updates in one store
write each. At most AHEAD waves are reserved and not yet recorded: that is what a crash can leave
Reserved for reconciliation.
"""

from __future__ import annotations

import gc
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.runtime import services
from tasks.sending import RunControl, SendOutcome, booking_link, send_one
from uysp.errors import LinkError
from uysp.models import LedgerEntry, LedgerStatus
from uysp.planning import PlannedSend
from uysp.ports import Services
from uysp.segments import segment_count
from uysp.templates import render

log = logging.getLogger(__name__)
WAVE = 10
AHEAD = 3

LinkResult = dict | str  # the lead's new link fields ({} when it has a link), or a gate reason


class ChunkPipeline:
    def __init__(self, svc: Services, control: RunControl, concurrency: int) -> None:
        self.svc = svc
        self.control = control
        self.linkers = ThreadPoolExecutor(concurrency, thread_name_prefix="link")
        self.senders = ThreadPoolExecutor(concurrency, thread_name_prefix="send")
        self.recorder = ThreadPoolExecutor(1, thread_name_prefix="record")
        self.recording: deque[Future[None]] = deque()

    def run(self, sends: Sequence[PlannedSend]) -> int:
        """Send the chunk unless the kill switch is set; returns how many were left unsent
        because the run halted."""
        waves = [sends[start : start + WAVE] for start in range(0, len(sends), WAVE)]
        try:
            left = self._feed(waves)
            while self.recording:
                self.recording.popleft().result()
            return left
        except BaseException as exc:
            self.control.halt(f"chunk stopped by {type(exc).__name__}: {exc}")
            raise
        finally:
            self.control.under_way.set()
            for pool in (self.linkers, self.senders, self.recorder):
                pool.shutdown(wait=True)

    def _feed(self, waves: list[Sequence[PlannedSend]]) -> int:
        if self.control.halted or not waves:
            return sum(len(w) for w in waves)
        # The kill switch is read while the first links are made, not before them.
        sending_on = self.linkers.submit(lambda: self.svc.store.get_settings().sending_on)
        links = self._create_links(waves[0])
        if not sending_on.result():
            self.control.halt("kill switch: SMS Sending is Paused")
        for index, wave in enumerate(waves):
            if self.control.halted:
                self._keep_links(wave, links)
                return sum(len(w) for w in waves[index:])
            upcoming = self._create_links(waves[index + 1]) if index + 1 < len(waves) else []
            self._launch(wave, links)
            links = upcoming
            while len(self.recording) > AHEAD:
                self.recording.popleft().result()
        return 0

    def _create_links(self, wave: Sequence[PlannedSend]) -> list[Future[LinkResult]]:
        return [self.linkers.submit(self._link_for, send) for send in wave]

    def _link_for(self, send: PlannedSend) -> LinkResult:
        lead = send.lead
        if lead.short_link_url:
            return {}
        target = booking_link(self.control.booking_url, send.template.campaign, lead.id)
        try:
            short = self.svc.shortener.create(
                target, lead_id=lead.id, campaign=send.template.campaign
            )
        except LinkError as exc:
            log.warning("link for lead %s failed: %s", lead.id, exc)
            return "link_failed"
        return {"short_link_id": short.id, "short_link_url": short.url}

    def _launch(self, wave: Sequence[PlannedSend], links: list[Future[LinkResult]]) -> None:
        """Reserve the wave's rows in one write, hand them to the senders, queue the record."""
        prepared: dict[str, PlannedSend] = {}
        entries: list[LedgerEntry] = []
        link_updates: dict[str, dict] = {}
        for send, link in zip(wave, links, strict=True):
            fields = link.result()
            if isinstance(fields, str):
                self.control.hold(fields)
                continue
            if fields and not self.control.test_mode:
                link_updates[send.lead.id] = fields
            entry = self._entry(send, fields.get("short_link_url") or send.lead.short_link_url)
            prepared[entry.send_key] = send
            entries.append(entry)
        reserved = self.svc.store.reserve_sends(entries)
        self.control.hold("already_sent", len(entries) - len(reserved))
        sending = [
            self.senders.submit(send_one, self.svc, self.control, e, prepared[e.send_key].lead)
            for e in reserved
        ]
        self.recording.append(self.recorder.submit(self._record, sending, link_updates))
        if sending:
            self.control.under_way.set()

    def _entry(self, send: PlannedSend, link: str | None) -> LedgerEntry:
        text = render(send.template, send.lead, link)
        test_mode = self.control.test_mode
        return LedgerEntry(
            send_key=f"test:{send.key}" if test_mode else send.key,
            status=LedgerStatus.RESERVED,
            event="test" if test_mode else "send",
            lead_id=send.lead.id,
            phone=self.control.test_phone if test_mode else send.phone,
            campaign_id=send.template.campaign,
            step=send.step,
            variant=send.variant,
            text=text,
            segments=segment_count(text),
            reserved_at=self.svc.clock.now(),
        )

    def _record(self, sending: list[Future[SendOutcome]], link_updates: dict[str, dict]) -> None:
        """A wave's outcomes and lead updates (new links ride along) in one store write."""
        outcomes = [future.result() for future in sending]
        lead_updates = dict(link_updates)
        for outcome in outcomes:
            if outcome.lead_update:
                lead_id = outcome.entry.lead_id
                lead_updates[lead_id] = link_updates.get(lead_id, {}) | outcome.lead_update
        finished = [o.entry for o in outcomes if o.entry.status != LedgerStatus.RESERVED]
        self.svc.store.record_sends(finished, lead_updates)
        for outcome in outcomes:
            self.control.tally(outcome)

    def _keep_links(self, wave: Sequence[PlannedSend], links: list[Future[LinkResult]]) -> None:
        """Links made for a wave the halt stopped are saved, so the next run reuses them."""
        made = {send.lead.id: link.result() for send, link in zip(wave, links, strict=True)}
        kept = {lead_id: fields for lead_id, fields in made.items() if isinstance(fields, dict)}
        kept = {lead_id: fields for lead_id, fields in kept.items() if fields}
        if kept and not self.control.test_mode:
            self.svc.store.update_leads(kept)


@contextmanager
def steady_pace() -> Iterator[None]:
    """Leaves what was alive before the send phase out of garbage collection during it. A full
    collection over everything Prefect and the adapters hold stops every thread for a third of a
    second, and the requests it held back then reach the provider together, inside its limit's
    window: a 429."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@task(name="send-chunk", cache_policy=NO_CACHE, retries=0)
def send_chunk(sends: list[PlannedSend], control: RunControl, concurrency: int) -> int:
    """Send one chunk; returns how many were left unsent because the run halted."""
    return ChunkPipeline(services(), control, concurrency).run(sends)
