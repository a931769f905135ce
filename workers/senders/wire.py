"""What goes to the providers and comes back: compact JSON bodies, JSON
answers read defensively, and `Retry-After`."""
from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, as sent to providers."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_object(content: bytes) -> dict[str, Any] | None:
    """The response body as a JSON object, or None when it is anything else."""
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


# A JSON field read defensively: itself when it has the type it should, else empty.
def as_str(value: object) -> str:
    return value if isinstance(value, str) else ""


def as_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
