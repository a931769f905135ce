"""The outbox: the latest notifications a dry run would have sent."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pushlite.storage.cluster import DataClient

from . import keys

SIZE = 100


def record(client: DataClient, instance_id: str, entries: Iterable[dict[str, Any]]) -> None:
    encoded = [json.dumps(entry, separators=(",", ":")) for entry in entries][-SIZE:]
    if not encoded:
        return
    key = keys.outbox(instance_id)
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(key, *encoded)
        pipe.ltrim(key, 0, SIZE - 1)
        pipe.execute()


def latest(client: DataClient, instance_id: str) -> list[dict[str, Any]]:
    """Newest first."""
    return [json.loads(entry) for entry in client.lrange(keys.outbox(instance_id), 0, SIZE - 1)]
