"""The Lua scripts, loaded once per process; redis-py runs them with EVALSHA
and falls back to loading them again after a Redis restart (NOSCRIPT)."""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Sequence

import redis
from redis.commands.core import Script


@cache
def _script(name: str) -> Script:
    source = resources.files(__package__).joinpath("lua", name).read_bytes()
    return Script(None, source)  # type: ignore[arg-type]  # bytes need no encoder


def run(client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run the script file ``lua/<name>`` on ``client`` (or a pipeline)."""
    return _script(name)(keys=keys, args=args, client=client)
