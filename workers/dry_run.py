"""The dry-run sender: records what would have been sent in the instance's
outbox instead of calling a provider. The embedded default delivers this way."""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pushlite.storage import outbox
from pushlite.storage.cluster import DataClient
from workers.senders import Outcome, Sender, SenderSettings, Target


class DryRunSender(Sender):
    provider = "dry-run"

    def __init__(self, client: DataClient, instance_id: str, provider: str) -> None:
        super().__init__({}, SenderSettings())
        self.client = client
        self.instance_id = instance_id
        self.target_provider = provider

    @classmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        return credential

    async def send(self, targets: Sequence[Target], payload: dict[str, Any]) -> Outcome:
        now = time.time()
        outbox.record(self.client, self.instance_id, (
            {"provider": self.target_provider, "platform": t.platform, "device_id": t.device_id,
             "token": t.token, "payload": payload, "at": now}
            for t in targets
        ))
        return Outcome(delivered=[t.device_id for t in targets])

    async def aclose(self) -> None:
        return None
