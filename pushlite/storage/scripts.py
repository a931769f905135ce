"""The Lua code, one file per area (``lua/device.lua``, ...). Each file
defines its helpers and returns the function that serves one call,
``function(KEYS, ARGV)``; ``lua/records.lua`` (the device record's layout and
the id lists) comes before each of them.

A call is an FCALL of a Redis function library made from the file (Redis 7+),
loaded on first use and again whenever Redis no longer has it (a restart
without persistence, FUNCTION FLUSH). A library defines its helpers once, when
Redis loads it; a script defined them again on every call, which under load
cost a registration more Redis time than its own work
(``bench/register_throughput.py``: 28 -> 17 us per call). Library and function
names carry a digest of the code, so two pushlite versions running side by
side during a deploy never call each other's code.

In a pipeline a call is an EVALSHA of the same code instead: redis-py loads a
pipeline's missing scripts before sending it, so a transaction never runs
half of its commands for want of its code.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Sequence

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import ResponseError


@dataclass(frozen=True)
class Code:
    function: str  # the FCALL name
    library: str  # what FUNCTION LOAD takes
    script: Script  # the same code as one script, for pipelines


def _source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text()


@cache
def code(name: str) -> Code:
    body = _source("records.lua") + _source(name)
    function = f"pushlite_{name.removesuffix('.lua')}_{hashlib.sha1(body.encode()).hexdigest()[:12]}"
    main = f"local main = (function()\n{body}\nend)()\n"
    return Code(
        function=function,
        library=f"#!lua name={function}\n{main}redis.register_function('{function}', main)\n",
        script=Script(None, f"{main}return main(KEYS, ARGV)\n".encode()),  # type: ignore[arg-type]
    )


def run(client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run ``lua/<name>`` on ``client`` (or in a pipeline)."""
    lua = code(name)
    if isinstance(client, Pipeline):
        return lua.script(keys=keys, args=args, client=client)
    try:
        return client.execute_command("FCALL", lua.function, len(keys), *keys, *args)
    except ResponseError as exc:
        message = str(exc)
        if message.lower().startswith("unknown command"):
            raise ResponseError(f"pushlite needs Redis 7.0 or later, for FCALL ({message})") from None
        if "Function not found" not in message:
            raise
    client.function_load(lua.library, replace=True)
    return client.execute_command("FCALL", lua.function, len(keys), *keys, *args)
