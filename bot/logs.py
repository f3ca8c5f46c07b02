"""Structured JSON logs; request, event and job ids ride along in a context variable."""

from __future__ import annotations

import contextvars
import logging
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


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
