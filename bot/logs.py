"""Structured JSON logs; request, event and job ids ride along in a context variable.

Chinese stays readable (no \\u escapes) and secrets never reach the log: every field of every line,
tracebacks included, passes through `redact` (bearer tokens, WeCom secrets in URLs, passwords in
database URLs, and the SQL parameters SQLAlchemy puts into its exception text — decrypted callbacks
and customers' messages are written as such parameters).
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Mapping
from contextlib import contextmanager
from types import MappingProxyType

from pythonjsonlogger.json import JsonFormatter

_context: contextvars.ContextVar[Mapping] = contextvars.ContextVar("log_context", default=MappingProxyType({}))


@contextmanager
def bind_log_context(**values):
    """Add fields (request_id, event_id, job_id, …) to every log line inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


_default_factory = logging.getLogRecordFactory()


def _record_with_context(*args, **kwargs) -> logging.LogRecord:
    record = _default_factory(*args, **kwargs)
    for key, value in _context.get().items():
        setattr(record, key, value)
    return record


# A record factory rather than a handler filter: every handler (tests' too) sees the context.
logging.setLogRecordFactory(_record_with_context)


_SECRETS = (
    # Up to a quote or blank: the rest of a token after a control byte is still the token.
    (re.compile(r"(?i)\b(bearer\s+)[^\s'\"]+"), r"\1***"),
    (re.compile(r"\bwa_[A-Za-z0-9_-]{8,}"), "wa_***"),
    (re.compile(r"(?i)\b(access_token|corpsecret|secret|password|encoding_aes_key)=[^&\s'\"]+"), r"\1=***"),
    (re.compile(r"(://[^:/@\s'\"]+):[^@/\s'\"]+@"), r"\1:***@"),
    # SQLAlchemy: "[parameters: (…)]" is one line (its repr escapes newlines); PostgreSQL's DETAIL
    # line repeats the values of a violated key.
    (re.compile(r"\[parameters: .*"), "[parameters: hidden]"),
    (re.compile(r"(?m)^(\s*DETAIL:).*$"), r"\1 hidden"),
)


def redact(text: str) -> str:
    """The text with credentials and SQL parameter values replaced."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class RedactingJsonFormatter(JsonFormatter):
    """JSON lines in UTF-8 whose string fields, tracebacks included, are redacted."""

    def process_log_record(self, log_data):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().process_log_record(log_data).items()}


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
