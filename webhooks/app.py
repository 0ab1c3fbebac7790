"""The webhook receiver: a FastAPI app for uvicorn (`uysp webhooks`, and inside `uysp serve`).

Each provider's request is checked (Calendly's signature, SimpleTexting's URL token), parsed,
and written to the inbox with a synchronous commit (shared by the requests arriving together)
before the 2xx goes out; the inbox worker processes it afterwards. A redelivery is acknowledged
and changes nothing. A body that fails validation is kept, raw, and answered 400 with the field
it failed on.

    uvicorn webhooks.app:create_app --factory    # the adapters and secrets from UYSP_* settings
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool

from integrations import calendly
from integrations.local_links import LocalShortener
from integrations.sqlite_store import SqliteDatabase
from tasks.events import read_event
from tasks.runtime import services
from uysp.events import InboxEvent, PayloadError
from uysp.ports import Services
from uysp.settings import Settings, get_settings
from webhooks import links
from webhooks.dispatch import InboxWorker, Mode, handler, resolve_mode
from webhooks.inbox import Inbox
from webhooks.intake import InboxWriter

MAX_BODY = 256 * 1024
NOT_FOUND_PAGE = "<!doctype html><title>Link not found</title><p>This link does not exist.</p>"


def create_app(
    svc: Services | None = None,
    inbox: Inbox | None = None,
    *,
    dispatch: Mode = "auto",
    settings: Settings | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    svc = svc or services()
    inbox = inbox or Inbox(SqliteDatabase(settings.sqlite_path))
    mode = resolve_mode(dispatch)
    worker = InboxWorker(inbox, svc, handler(mode, svc, inbox))
    shortener = LocalShortener(inbox.db, svc.clock, settings.link_base_url)
    writer = InboxWriter(inbox)
    calendly_key = _secret(settings.calendly_signing_key)
    texting_token = _secret(settings.simpletexting_webhook_token)

    async def accept(source: str, body: bytes) -> Response:
        now = svc.clock.now()
        try:
            event_id, kind, _ = read_event(source, body)
        except PayloadError as exc:
            kept = await writer.run(partial(inbox.keep_invalid, source, body, str(exc), now))
            return JSONResponse({"error": str(exc), "field": exc.field, "kept": kept}, 400)
        new = await writer.add(InboxEvent(event_id, source, kind, body, now))
        if new:
            worker.notify()
        return JSONResponse({"status": "accepted" if new else "duplicate", "id": event_id})

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        writer.start()
        worker.start()
        try:
            yield
        finally:
            worker.stop()
            writer.stop()

    app = FastAPI(
        title="UYSP webhooks", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )

    @app.post("/webhooks/calendly")
    async def calendly_webhook(request: Request) -> Response:
        body = await _read_body(request)
        if calendly_key is None:
            return _unauthorized("UYSP_CALENDLY_SIGNING_KEY is not set")
        signature = request.headers.get(calendly.SIGNATURE_HEADER)
        try:
            calendly.verify(signature, body, calendly_key, svc.clock.now())
        except calendly.SignatureError as exc:
            return _unauthorized(str(exc))
        return await accept("calendly", body)

    @app.post("/webhooks/simpletexting")
    async def simpletexting_webhook(request: Request) -> Response:
        if texting_token is None:
            return _unauthorized("UYSP_SIMPLETEXTING_WEBHOOK_TOKEN is not set")
        given = request.query_params.get("token", "")
        if not hmac.compare_digest(given.encode(), texting_token.encode()):
            return _unauthorized("wrong or missing token")
        body = await _read_body(request)
        return await accept("simpletexting", body)

    @app.api_route("/l/{alias}", methods=["GET", "HEAD"])
    async def follow_link(alias: str, request: Request) -> Response:
        agent = request.headers.get("user-agent")
        target = await writer.run(partial(links.follow, shortener, alias, request.method, agent))
        if target is None:
            return HTMLResponse(NOT_FOUND_PAGE, 404)
        return RedirectResponse(target, 302)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {
            "status": "ok",
            "dispatch": mode,
            "inbox": await run_in_threadpool(inbox.counts),
            "calendly_signing_key": calendly_key is not None,
            "simpletexting_webhook_token": texting_token is not None,
        }

    return app


async def _read_body(request: Request) -> bytes:
    """The raw body, refused with 413 past MAX_BODY without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise HTTPException(413, f"body over {MAX_BODY // 1024} KiB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"body over {MAX_BODY // 1024} KiB")
    return bytes(body)


def _unauthorized(reason: str) -> Response:
    return JSONResponse({"error": reason}, 401)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None
