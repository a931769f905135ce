"""The Lua code, one file per area (``lua/device.lua``, ...). Each file
defines its helpers and returns the function that serves one call,
``function(KEYS, ARGV)``; ``lua/records.lua`` (the device record's layout and
the id lists) comes before each of them.

A call is an FCALL of a Redis function library made from the file (Redis 7+).
A library defines its helpers once, when Redis loads it; a script defined
them again on every call, which under load cost a registration more Redis
time than its own work (``bench/register_throughput.py``: 28 -> 17 us per
call). Library and function names carry a digest of the code, so two
pushlite versions running side by side during a deploy never call each
other's code.

Redis may lack a library: first use, a restart without persistence,
FUNCTION FLUSH, a Cluster master added later. A call answered "no such
function" loads the library on every master that answers (every master of a
Cluster, so that a slot moving to another one finds it there too) and runs
again: the call did nothing the first time. Calls are made one at a time
(``run``) or many in one round trip (``run_many``, a pipeline that is not a
transaction, so each call stands alone and one missing library cannot leave
a batch half applied). FCALL never goes into a MULTI/EXEC: there, a missing
library would fail only that command and let the others commit.

Every key a function touches is passed in KEYS (the Cluster routes the call
by them and refuses undeclared keys while their slot moves); ``keys.py``
spells them.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.exceptions import ClusterError, ResponseError

from pushlite.storage.cluster import DataClient

from .cluster import is_cluster


@dataclass(frozen=True)
class Code:
    function: str  # the FCALL name
    library: str  # what FUNCTION LOAD takes


@dataclass(frozen=True)
class Call:
    """One function call: ``lua/<name>`` with these keys and arguments."""

    name: str
    keys: Sequence[str]
    args: Sequence[Any]

    def command(self) -> tuple[Any, ...]:
        return ("FCALL", code(self.name).function, len(self.keys), *self.keys, *self.args)


def _source(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text()


@cache
def code(name: str) -> Code:
    body = _source("records.lua") + _source(name)
    function = f"pushlite_{name.removesuffix('.lua')}_{hashlib.sha1(body.encode()).hexdigest()[:12]}"
    main = f"local main = (function()\n{body}\nend)()\n"
    library = f"#!lua name={function}\n{main}redis.register_function('{function}', main)\n"
    return Code(function=function, library=library)


def run(client: DataClient, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """Run ``lua/<name>`` once and return its answer.

    On a Cluster, while the call's slot moves, a call whose keys are not all
    on one side is refused (TRYAGAIN); redis-py tries again for ~0.4 s and
    gives up ("TTL exhausted"). The call did not run, so it is tried again,
    for the client's ``moving_slot_patience`` more seconds, before that error
    goes up (a 503).
    """
    return run_call(client, Call(name, keys, args))


def run_call(client: DataClient, call: Call) -> Any:
    """``run`` for a call already made."""
    deadline = None
    while True:
        try:
            return _run_once(client, call)
        except ClusterError as exc:
            # (ClusterDownError and MasterDownError are ClusterErrors too, but no moving slot.)
            if type(exc) is not ClusterError or not is_cluster(client):
                raise
            deadline = deadline or time.monotonic() + client.moving_slot_patience
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _run_once(client: DataClient, call: Call) -> Any:
    try:
        return client.execute_command(*call.command())
    except ResponseError as exc:
        if not _missing(exc):
            raise
    load(client, call.name)
    return client.execute_command(*call.command())


def run_many(client: DataClient, calls: Sequence[Call]) -> list[Any]:
    """Run each call once, pipelined (one round trip per Redis node), and
    return their answers in order. Raises the first error a call met (the
    other calls may have run)."""
    answers: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    for attempt in range(2):
        with client.pipeline(transaction=False) as pipe:
            for i in pending:
                pipe.execute_command(*calls[i].command())
            results = pipe.execute(raise_on_error=False)
        missing = []
        for i, result in zip(pending, results, strict=True):
            if isinstance(result, ResponseError) and _missing(result) and attempt == 0:
                missing.append(i)
            elif isinstance(result, Exception):
                raise result
            else:
                answers[i] = result
        if not missing:
            break
        for name in {calls[i].name for i in missing}:
            load(client, name)
        pending = missing
    return answers


def load(client: DataClient, name: str) -> None:
    """Load ``lua/<name>`` on Redis: on every master of a Cluster that answers
    (one that is down gets it when it is next called)."""
    library = code(name).library
    if not is_cluster(client):
        client.function_load(library, replace=True)
        return
    for node in client.get_primaries():
        try:
            client.execute_command("FUNCTION LOAD", "REPLACE", library, target_nodes=node)
        except (redis.ConnectionError, redis.TimeoutError):
            continue


def _missing(exc: ResponseError) -> bool:
    message = str(exc)
    if message.lower().startswith("unknown command"):
        raise ResponseError(f"pushlite needs Redis 7.0 or later, for FCALL ({message})") from None
    return "Function not found" in message
