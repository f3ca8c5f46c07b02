"""`/wecom/callback`: GET URL verification, POST messages and events.

Nothing slow happens before the answer: verify, decrypt, parse, one INSERT of the inbox row and
its dispatch job, then an empty 200. Handlers run later in the job runner.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web

from bot.callback.inbox import is_bad_row
from bot.callback.spool import SPOOL
from bot.metrics import CALLBACK_LATENCY, CALLBACKS
from bot.services import SERVICES
from bot.wecom.crypto import CallbackRejected
from bot.wecom.events import InboundEvent, MalformedMessage, parse_xml

log = logging.getLogger("bot.callback")

routes = web.RouteTableDef()


def _query(request: web.Request, *names: str) -> list[str]:
    missing = [name for name in names if not request.query.get(name)]
    if missing:
        raise CallbackRejected(f"missing query parameter(s): {', '.join(missing)}")
    return [request.query[name] for name in names]


def _reject(exc: CallbackRejected, kind: str = "unknown") -> web.Response:
    CALLBACKS.labels(kind, exc.code).inc()
    log.warning("callback rejected: %s (%s)", exc, exc.code)
    return web.Response(status=exc.status, text=f"{exc.code}: {exc}\n")


@routes.get("/wecom/callback")
async def verify_url(request: web.Request) -> web.Response:
    """WeCom checks the URL: answer the decrypted echostr, exactly, as the whole body."""
    crypto = request.app[SERVICES].callback_crypto
    try:
        signature, timestamp, nonce, echostr = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
        plaintext = crypto.open(signature, timestamp, nonce, echostr)
    except CallbackRejected as exc:
        return _reject(exc, "url_verification")
    CALLBACKS.labels("url_verification", "accepted").inc()
    return web.Response(body=plaintext.encode(), content_type="text/plain")


async def _read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, however many TCP writes it came in; never more than limit + 1 bytes held.

    `request.read()` would do, but its bound is the app-wide client_max_size, not this endpoint's.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge(f"body over {limit} bytes")
    body = bytearray()
    # read(n) answers with what has arrived so far (b"" only at the end), so read until the end.
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise _TooLarge(f"body over {limit} bytes")
    return bytes(body)


class _TooLarge(CallbackRejected):
    status = 413
    code = "body_too_large"


# WeCom's envelope is always this shape; the full parser is the fallback for anything else.
_ENVELOPE = re.compile(rb"^\s*<xml>\s*(?:<ToUserName><!\[CDATA\[[^\]<]*\]\]></ToUserName>\s*)?"
                       rb"(?:<AgentID><!\[CDATA\[\d*\]\]></AgentID>\s*|<AgentID>\d*</AgentID>\s*)?"
                       rb"<Encrypt><!\[CDATA\[([A-Za-z0-9+/=]+)\]\]></Encrypt>\s*"
                       rb"(?:<AgentID><!\[CDATA\[\d*\]\]></AgentID>\s*|<AgentID>\d*</AgentID>\s*)?</xml>\s*$")


def _encrypted_field(body: bytes) -> str:
    """The <Encrypt> value: only it is signed, so only it is read."""
    match = _ENVELOPE.match(body)
    if match:
        return match.group(1).decode()
    try:
        envelope = parse_xml(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedMessage("body is not UTF-8") from None
    encrypted = envelope.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise MalformedMessage("<Encrypt> is missing")
    return encrypted


@routes.post("/wecom/callback")
async def receive_callback(request: web.Request) -> web.Response:
    started = time.perf_counter()
    services = request.app[SERVICES]
    kind = "unknown"
    try:
        signature, timestamp, nonce = _query(request, "msg_signature", "timestamp", "nonce")
        body = await _read_limited(request, services.settings.callback_max_body_bytes)
        encrypted = _encrypted_field(body)
        event = InboundEvent.from_xml(services.callback_crypto.open(signature, timestamp, nonce, encrypted))
        kind = event.kind
    except CallbackRejected as exc:
        return _reject(exc, kind)

    try:
        async with asyncio.timeout(services.settings.callback_inbox_timeout_seconds):
            outcome = "accepted" if await services.inbox.store(event) is not None else "duplicate"
    except Exception as exc:
        if is_bad_row(exc) or SPOOL not in request.app:
            return _unavailable(kind, "inbox write failed")
        # The database is down or slow: keep the event in this process's spool and say so.
        log.warning("inbox write failed (%s: %s); spooling the event", type(exc).__name__, exc)
        try:
            outcome = "spooled" if await request.app[SPOOL].keep(event) else "duplicate"
        except Exception:
            return _unavailable(kind, "inbox and spool writes failed")

    CALLBACKS.labels(kind, outcome).inc()
    CALLBACK_LATENCY.observe(time.perf_counter() - started)
    return web.Response(status=200)


def _unavailable(kind: str, what: str) -> web.Response:
    # Nowhere to keep the event: a 503 makes WeCom retry it.
    log.exception("%s; answering 503 so WeCom retries", what)
    CALLBACKS.labels(kind, "unavailable").inc()
    return web.Response(status=503, text="inbox unavailable, retry\n")
