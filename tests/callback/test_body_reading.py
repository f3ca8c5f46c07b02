"""The body is read whole, whatever the TCP writes it came in, and never past the limit."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.services import SERVICES
from bot.storage.models import InboxEvent
from tests.callback.conftest import contact_event, raw_post


async def inbox_count(client) -> int:
    async with client.app[SERVICES].db.session() as session:
        return await session.scalar(select(func.count()).select_from(InboxEvent))


@pytest.mark.parametrize("pieces, chunked", [(2, False), (3, False), (7, False), (3, True)])
async def test_callbacks_written_in_several_pieces_are_accepted(intake, crypto, pieces, chunked):
    host, port = intake.server.host, intake.server.port
    for i in range(5):
        sealed = crypto.seal(contact_event(f"wmSplit{pieces}{chunked}{i}"))
        status, body = await raw_post(host, port, sealed["params"], sealed["body"].encode(),
                                      pieces=pieces, chunked=chunked)
        assert (status, body) == (200, b"")
    assert await inbox_count(intake) == 5


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_body_over_the_limit_is_413_even_in_pieces(intake, crypto, chunked):
    sealed = crypto.seal(contact_event("wmHuge"))
    limit = intake.app[SERVICES].settings.callback_max_body_bytes
    body = sealed["body"].replace("<xml>", "<xml>" + " " * limit).encode()  # valid XML, one byte too many
    status, answer = await raw_post(intake.server.host, intake.server.port, sealed["params"], body,
                                    pieces=4, chunked=chunked)
    assert status == 413 and b"body_too_large" in answer
    assert await inbox_count(intake) == 0


async def test_a_body_of_exactly_the_limit_is_read(intake, crypto):
    sealed = crypto.seal(contact_event("wmExact"))
    limit = intake.app[SERVICES].settings.callback_max_body_bytes
    body = sealed["body"].encode()
    body = body.replace(b"<xml>", b"<xml>" + b" " * (limit - len(body)))
    assert len(body) == limit
    status, _ = await raw_post(intake.server.host, intake.server.port, sealed["params"], body, pieces=3,
                               chunked=True)
    assert status == 200 and await inbox_count(intake) == 1
