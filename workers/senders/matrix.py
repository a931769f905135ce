"""Matrix push gateway sender: ``POST <data.url>`` in the push gateway format.

Pushers that share a gateway URL (and notification format) go out together,
in one request per `MAX_DEVICES_PER_REQUEST` devices:
``{"notification": {..., "devices": [{"app_id", "pushkey", "pushkey_ts", "data"}]}}``,
where ``data`` is the pusher's data without ``url`` (as the push gateway API
says), and a pusher with ``format: "event_id_only"`` gets only the event id,
room id, counts and priority. A pusher set with ``encryption`` gets the rest
of the notification encrypted (`matrix_encryption`). The gateway answers ``{"rejected": [pushkeys]}``: those
pushers are dead. 429, 5xx and network errors are temporary; other answers are
permanent failures.

Every URL is checked again before each request (`pushlite.url_guard`: the
allowlist, and public addresses only), and the request goes to the address
that was checked, with the URL's host in the Host header and TLS SNI, so a
DNS answer that changes between check and connect cannot redirect it.
Redirects are not followed. No credential: one sender serves every instance.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import workers.senders.matrix_encryption as matrix_encryption
from pushlite import url_guard
from workers.senders.base import HTTPSender, Outcome, SenderSettings, Target, retry_reason
from workers.senders.clients import ClientPool, Http1Client
from workers.senders.wire import as_dict, as_list, dumps, json_object, retry_after

log = logging.getLogger(__name__)

MAX_DEVICES_PER_REQUEST = 100
EVENT_ID_ONLY = ("event_id", "room_id", "counts", "prio")
MAX_CLIENTS = 64


def notification(
    payload: dict[str, Any], event_id_only: bool, devices: list[dict[str, Any]],
    encryption: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``notification`` object of one gateway request."""
    fields = {k: v for k, v in payload.items() if k != "devices"}
    if event_id_only:
        fields = {k: fields[k] for k in EVENT_ID_ONLY if k in fields}
    fields.setdefault("prio", "high")
    if encryption is not None:
        fields = matrix_encryption.encrypt(fields, encryption)
    return {**fields, "devices": devices}


def encryption_of(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The pusher's encryption settings (None: clear content). Raises
    InvalidEncryption for settings that cannot be applied (stored before they
    were checked): such a pusher gets nothing rather than clear content."""
    encryption = metadata.get("encryption")
    if encryption is None:
        return None
    if not isinstance(encryption, dict):
        raise matrix_encryption.InvalidEncryption("encryption must be an object")
    return matrix_encryption.check(encryption)


def device_entry(target: Target) -> dict[str, Any]:
    metadata = target.metadata or {}
    data = as_dict(metadata.get("data"))
    entry: dict[str, Any] = {
        "app_id": target.bundle_id,
        "pushkey": target.token,
        "data": {k: v for k, v in data.items() if k != "url"},
    }
    if "pushkey_ts" in metadata:
        entry["pushkey_ts"] = metadata["pushkey_ts"]
    return entry


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """One gateway request: up to `MAX_DEVICES_PER_REQUEST` pushers of one URL,
    notification format and encryption key."""

    url: str
    payload: dict[str, Any]
    event_id_only: bool
    encryption: dict[str, Any] | None
    targets: list[Target]


class MatrixSender(HTTPSender[GatewayRequest]):
    """Sends one notification to many pushers, one request per gateway URL."""

    provider = "matrix"

    def __init__(self, credential: dict[str, Any], settings: SenderSettings) -> None:
        super().__init__(credential, settings)
        self.allowlist = settings.matrix_gateway_allowlist
        # One client per (gateway origin, checked address): a connection is only
        # reused for the host whose certificate it verified.
        self._clients: ClientPool[tuple[str, str], Http1Client] = ClientPool(
            lambda key: Http1Client(key[0], key[1], settings.timeout), limit=MAX_CLIENTS
        )

    @classmethod
    def validate_credential(cls, credential: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def requests(
        self, targets: Sequence[Target], payload: dict[str, Any], outcome: Outcome
    ) -> list[GatewayRequest]:
        groups: dict[tuple[str, bool, str], list[Target]] = {}
        encryptions: dict[str, dict[str, Any] | None] = {}
        for target in targets:
            metadata = target.metadata or {}
            data = as_dict(metadata.get("data"))
            url = data.get("url")
            if metadata.get("kind") != "http" or not isinstance(url, str):
                outcome.failed.append((target.device_id, "matrix:no-gateway-url"))
                continue
            try:
                encryption = encryption_of(metadata)
            except matrix_encryption.InvalidEncryption:
                outcome.failed.append((target.device_id, "matrix:invalid-encryption"))
                continue
            key = json.dumps(encryption, sort_keys=True)
            encryptions[key] = encryption
            groups.setdefault((url, data.get("format") == "event_id_only", key), []).append(target)
        return [
            GatewayRequest(url, payload, event_id_only, encryptions[key], group[i:i + MAX_DEVICES_PER_REQUEST])
            for (url, event_id_only, key), group in groups.items()
            for i in range(0, len(group), MAX_DEVICES_PER_REQUEST)
        ]

    @staticmethod
    def device_ids(request: GatewayRequest) -> list[str]:
        return [t.device_id for t in request.targets]

    async def post(self, request: GatewayRequest, outcome: Outcome) -> None:
        group = request.targets
        devices = [device_entry(t) for t in group]
        body = {"notification": notification(request.payload, request.event_id_only, devices, request.encryption)}
        try:
            destination = await asyncio.to_thread(url_guard.check, request.url, self.allowlist)
        except url_guard.UnsafeURL as exc:
            log.warning("matrix: refusing gateway URL for %d pusher(s): %s", len(group), exc)
            outcome.failed.extend((t.device_id, "matrix:unsafe-url") for t in group)
            return
        client = self._clients.get((f"{destination.scheme}://{destination.authority}", destination.addresses[0]))
        response = await outcome.timed(client.post(
            destination.target, content=dumps(body), headers={"content-type": "application/json"}
        ))
        status = response.status_code
        if status == 200:
            answer = json_object(response.content) or {}
            rejected = as_list(answer.get("rejected"))
            dead = {key for key in rejected if isinstance(key, str)}
            for target in group:
                (outcome.dead if target.token in dead else outcome.delivered).append(target.device_id)
        elif status == 429 or status >= 500:
            ids = [t.device_id for t in group]
            outcome.retry_later(ids, retry_after(response.headers.get("retry-after")), retry_reason(status))
        else:
            outcome.failed.extend((t.device_id, f"matrix:{status}") for t in group)

    async def aclose(self) -> None:
        await self._clients.aclose()
