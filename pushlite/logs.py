"""Log lines of the web and worker processes: readable text by default, one
JSON object per line with ``PUSHLITE_LOG_FORMAT=json``.

Every line carries the context it was logged in (``bind``): the request id
of the request being served, and the instance and publish a job works on,
so that one request id leads to every line its publish caused. Lines say
what happened and name things by id; secrets (secret keys, provider keys,
push tokens, user JWTs) are never logged: the access line names the route
template, never the path or the query string (which may hold a push token or
an ``access_token``), and the HTTP client libraries, whose debug lines show
request URLs and headers, log warnings only.

No Flask here: the workers use it too.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

import orjson

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The fields a line may carry beside its message, in the order text lines show them.
CONTEXT_FIELDS = ("request_id", "instance_id", "publish_id")
EXTRA_FIELDS = ("method", "route", "status", "job", "duration_ms")
# Libraries that log request URLs and headers (APNs paths hold device tokens,
# Authorization headers provider tokens) at INFO or DEBUG.
QUIET_LOGGERS = ("httpx", "httpcore", "jh2", "urllib3", "werkzeug")

_context: ContextVar[Mapping[str, str]] = ContextVar("pushlite_log_context", default=MappingProxyType({}))
# Functions giving fields of what is being served, asked only when a line is
# logged (``add_source``): a web request costs nothing for its fields unless
# something logs during it.
_sources: list[Callable[[], Mapping[str, str]]] = []


def add_source(source: Callable[[], Mapping[str, str]]) -> None:
    """Have every line carry the fields ``source()`` gives at the time (once
    per source; fields bound with ``bind`` or ``push`` win over them)."""
    if source not in _sources:
        _sources.append(source)


def current() -> Mapping[str, str]:
    """The fields every line logged here and now carries."""
    fields = _context.get()
    for source in _sources:
        given = source()
        if given:
            fields = {**given, **fields}
    return fields


def push(**fields: str | None) -> Any:
    """Add fields to the context; returns the token ``pop`` takes (for hooks
    that cannot hold a ``with`` block open, like a request's)."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v}})


def pop(token: Any) -> None:
    _context.reset(token)


@contextmanager
def bind(**fields: str | None) -> Iterator[None]:
    token = push(**fields)
    try:
        yield
    finally:
        pop(token)


async def carry(fields: Mapping[str, str], awaitable: Any) -> Any:
    """Await in a task that carries ``fields`` (a task started from another
    thread begins with that thread's context, not its caller's)."""
    _context.set(fields)
    return await awaitable


class ContextFilter(logging.Filter):
    """Copies the context onto each record (the handler's filter, so every logger's lines get it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _fields(record: logging.LogRecord) -> Iterator[tuple[str, Any]]:
    for name in CONTEXT_FIELDS + EXTRA_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            yield name, value


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message,
    the context and extra fields the record has, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> [field=value ...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{name}={value}" for name, value in _fields(record))
        line = super().formatMessage(record)
        return f"{line} [{fields}]" if fields else line


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise RuntimeError(f"PUSHLITE_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def handler(log_format: str) -> logging.Handler:
    """A stderr handler with the format and the context filter."""
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(formatter(log_format))
    out.addFilter(ContextFilter())
    return out


def configure(log_format: str, level: str) -> None:
    """Send every logger's lines to stderr in ``log_format`` from ``level`` up
    (a process entry point calls this once, before building the app)."""
    if level.upper() not in LEVELS:
        raise RuntimeError(f"PUSHLITE_LOG_LEVEL must be one of {', '.join(LEVELS)}, not {level!r}")
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
