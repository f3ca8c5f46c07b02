"""Fixtures for the callback intake: raw HTTP writes, a cuttable TCP proxy, signed events."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import pytest

from bot.app import create_app
from tests.conftest import TEST_CORP_ID


def contact_event(external_userid: str, userid: str = "guide01", create_time: int | str | None = None,
                  change_type: str = "add_external_contact", state: str | None = None,
                  msg_id: str | None = None) -> str:
    """A customer-contact event (by default: an add); with msg_id the same fields carry a MsgId."""
    return (
        f"<xml><ToUserName><![CDATA[{TEST_CORP_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{create_time if create_time is not None else int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_external_contact]]></Event>"
        f"<ChangeType><![CDATA[{change_type}]]></ChangeType><UserID><![CDATA[{userid}]]></UserID>"
        f"<ExternalUserID><![CDATA[{external_userid}]]></ExternalUserID>"
        + (f"<State><![CDATA[{state}]]></State>" if state is not None else "")
        + (f"<MsgId>{msg_id}</MsgId>" if msg_id is not None else "")
        + f"<WelcomeCode><![CDATA[WC{external_userid}]]></WelcomeCode></xml>"
    )


async def post(client, sealed: dict, body: str | bytes | None = None, **param_overrides):
    """POST a sealed callback to /wecom/callback (parameters and body may be overridden)."""
    params = {**sealed["params"], **param_overrides}
    return await client.post("/wecom/callback", params=params, data=body if body is not None else sealed["body"])


async def raw_post(host: str, port: int, params: dict, body: bytes, *, pieces: int = 2, pause: float = 0.05,
                   chunked: bool = False) -> tuple[int, bytes]:
    """POST /wecom/callback over a bare socket, the request cut into `pieces` writes with pauses."""
    reader, writer = await asyncio.open_connection(host, port)
    length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    head = (f"POST /wecom/callback?{urlencode(params)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: text/xml\r\n{length}\r\nConnection: close\r\n\r\n").encode()
    payload = (b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _split(body, pieces)) + b"0\r\n\r\n"
               if chunked else body)
    try:
        writer.write(head)
        for part in _split(payload, pieces):
            await writer.drain()
            await asyncio.sleep(pause)
            writer.write(part)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def _split(data: bytes, pieces: int) -> list[bytes]:
    size = -(-len(data) // pieces)
    return [data[i : i + size] for i in range(0, len(data), size)]


class CuttableProxy:
    """A TCP proxy to the database that a test can cut (every connection dropped, new ones refused
    at once) and restore, to play a database outage without touching the server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.cut = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def _serve(self, client_reader, client_writer) -> None:
        if self.cut:
            client_writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self._writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    async def _pipe(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()
            self._writers.discard(writer)

    def cut_off(self) -> None:
        self.cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut = False

    async def stop(self) -> None:
        self.cut_off()
        self._server.close()
        await self._server.wait_closed()


@pytest.fixture
async def db_proxy_to_postgres(postgres_url):
    """The run's PostgreSQL test database (whatever the suite's backend), migrated and emptied,
    behind a CuttableProxy; yields (proxy, proxied url)."""
    from sqlalchemy.engine import make_url

    from tests.conftest import prepare_postgres

    await prepare_postgres(postgres_url)
    url = make_url(postgres_url)
    proxy = CuttableProxy(url.host or "127.0.0.1", url.port or 5432)
    port = await proxy.start()
    yield proxy, url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    await proxy.stop()


@pytest.fixture
async def intake(aiohttp_client, make_settings, tmp_path):
    """The web service (no job runner), its spool in this test's own directory."""
    return await aiohttp_client(create_app(make_settings(callback_spool_path=str(tmp_path / "spool.sqlite3")),
                                           run_jobs=False))
