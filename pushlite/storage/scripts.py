"""The Lua scripts, loaded once per process; redis-py runs them with EVALSHA
and falls back to loading them again after a Redis restart (NOSCRIPT)."""
from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any, Sequence

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError


@cache
def _script(name: str) -> Script:
    source = resources.files(__package__).joinpath("lua", name).read_bytes()
    return Script(None, source)  # type: ignore[arg-type]  # bytes need no encoder


def run(client: redis.Redis, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run the script file ``lua/<name>`` on ``client`` (or a pipeline)."""
    script = _script(name)
    if isinstance(client, Pipeline):
        # The pipeline loads its scripts before executing (after a restart too).
        return script(keys=keys, args=args, client=client)
    # On the hot path, straight to EVALSHA: redis-py's Script and evalsha
    # wrappers cost more than the round trip's own client-side work.
    try:
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(script.script)
        return client.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
