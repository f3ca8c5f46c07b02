"""Logs: Chinese readable, and neither credentials nor message contents ever written."""

import asyncio
import io
import json
import logging

import pytest
from sqlalchemy.exc import IntegrityError

from bot.logs import configure_logging, redact


@pytest.fixture
def json_logs(monkeypatch):
    """configure_logging as the CLI does, writing to a captured stderr; the root logger restored after."""
    monkeypatch.setattr("sys.stderr", io.StringIO())
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("INFO")
    stream = root.handlers[0].stream

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]

    yield lines
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_chinese_is_written_as_chinese(json_logs):
    logging.getLogger("bot.test").info("导购 %s 绑定了客户", "张三")
    (line,) = json_logs()
    assert line["message"] == "导购 张三 绑定了客户"


async def test_a_bearer_token_with_a_control_byte_is_not_logged(aiohttp_client, settings, json_logs):
    from bot.app import create_app

    client = await aiohttp_client(create_app(settings, run_jobs=False))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    token = "wa_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA"
    writer.write(f"GET /api/v1/stores HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\x01QQtailQQ\r\n\r\n".encode())
    await writer.drain()
    assert b" 400 " in await reader.read(100)
    writer.close()
    await asyncio.sleep(0.1)
    logged = json.dumps(json_logs(), ensure_ascii=False)
    assert "Bearer ***" in logged  # the failure is logged, the token is not
    assert token[3:] not in logged and "QQtailQQ" not in logged


async def test_sql_parameters_are_not_logged_with_a_database_error(db, json_logs):
    from bot.storage.models import ApiToken

    secret = "<xml><Content><![CDATA[我的手机号 13800138000]]></Content></xml>"
    with pytest.raises(IntegrityError) as failure:
        async with db.session() as session, session.begin():
            session.add_all([ApiToken(token_hash="same", role="guide", name=secret[:100]),
                             ApiToken(token_hash="same", role="guide", name=secret[:100])])
    assert "13800138000" not in str(failure.value)  # the engines hide parameters at the source
    logging.getLogger("bot.test").error("insert failed: %s", failure.value, exc_info=failure.value)
    (line,) = json_logs()
    assert "13800138000" not in json.dumps(line, ensure_ascii=False)


def test_sql_parameters_in_an_error_from_elsewhere_are_redacted_in_the_log(json_logs):
    """A driver or library error that still carries SQLAlchemy's parameter list (an engine not made
    by bot.storage, say): the log filter hides it."""
    text = "(psycopg.errors.UniqueViolation) duplicate\n[SQL: INSERT INTO t (a) VALUES (%s)]\n" \
           "[parameters: ('我的手机号 13800138000',)]"
    try:
        raise RuntimeError(text)
    except RuntimeError as exc:
        logging.getLogger("bot.test").error("insert failed: %s", exc, exc_info=exc)
    (line,) = json_logs()
    assert "13800138000" not in json.dumps(line, ensure_ascii=False)
    assert "[parameters: hidden]" in line["message"] and "[parameters: hidden]" in line["exc_info"]


@pytest.mark.parametrize(("text", "shown"), [
    ("GET /cgi-bin/gettoken?corpid=ww1&corpsecret=abc123 200", "GET /cgi-bin/gettoken?corpid=ww1&corpsecret=*** 200"),
    ("/cgi-bin/message/send?access_token=tok-1", "/cgi-bin/message/send?access_token=***"),
    ("cannot reach postgresql://app:pa55@db:5432/wa", "cannot reach postgresql://app:***@db:5432/wa"),
    ("DETAIL:  Key (msg_id)=(13800138000) already exists.", "DETAIL: hidden"),
    ("token wa_abcdefghijklmnop created", "token wa_*** created"),
])
def test_redact(text, shown):
    assert redact(text) == shown
