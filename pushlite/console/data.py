"""What the console's pages show, gathered from storage (and RQ) into plain
values for the templates. Key material never leaves here: credentials are
shown by their public identifiers."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis
from cryptography.fernet import Fernet
from rq.job import Job
from rq.registry import FailedJobRegistry

from pushlite.storage import credentials, instances, keys, stats, work
from pushlite.storage.census import Census
from pushlite.storage.cluster import DataClient
from pushlite.storage.credentials import CredentialDecryptError
from workers.jobs import job_id
from workers.runtime import DELIVERY_QUEUE

# How many of the newest failed RQ jobs the publish page looks through for its own.
FAILED_JOBS_CHECKED = 200


@dataclass
class InstanceRow:
    instance: instances.Instance
    providers: list[str]  # the instance's own credentials (apns, fcm, web)
    app_credentials: int  # how many credentials its apps have
    census: Census | None  # when one was counted in the last minute


def instance_rows(client: DataClient) -> list[InstanceRow]:
    """Every instance, with what is known without counting anything."""
    found = instances.list_all(client)
    with client.pipeline(transaction=False) as pipe:
        for instance in found:
            pipe.hkeys(keys.credentials(instance.id))
            pipe.get(keys.census(instance.id))
        replies = pipe.execute()
    rows = []
    for instance, names, cached in zip(found, replies[::2], replies[1::2], strict=True):
        owners = [credentials.parse_field(name) for name in names]
        rows.append(InstanceRow(
            instance,
            sorted(provider for app, provider in owners if not app),
            sum(1 for app, _ in owners if app),
            Census(**json.loads(cached)) if cached else None,
        ))
    return sorted(rows, key=lambda row: (row.instance.name.lower(), row.instance.id))


@dataclass
class Credentials:
    # owner ("" for the instance, else an app name) -> provider -> public fields
    owners: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    apps: list[str] = field(default_factory=list)  # every app the instance knows
    problem: str | None = None


def credentials_of(client: DataClient, fernet: Fernet, instance_id: str) -> Credentials:
    """Which providers the instance and each app have credentials for, with their public identifiers."""
    out = Credentials(owners={"": {}})
    try:
        stored = credentials.load(client, fernet, instance_id)
    except CredentialDecryptError:
        out.problem = ("A stored credential does not decrypt with PUSHLITE_ENCRYPTION_KEY: set it again "
                       "through the admin API.")
        return out
    for (app, provider), (_, credential) in stored.items():
        shown = {k: credential.get(k) for k in credentials.PUBLIC_FIELDS.get(provider, ()) if k in credential}
        if provider == "web":
            shown = {"vapid_public_key": credential.get("public_key")}
        out.owners.setdefault(app, {})[provider] = shown
    known = cast("set[str]", client.smembers(keys.apps(instance_id)))  # a data client: responses decoded
    out.apps = sorted(known | {a for a in out.owners if a})
    return out


def chart(minutes: list[tuple[int, dict[str, int]]]) -> dict[str, Any]:
    """The per-minute counts as the chart script reads them: times and one series per outcome."""
    return {
        "times": [start for start, _ in minutes],
        "series": {outcome: [counts[outcome] for _, counts in minutes] for outcome in stats.OUTCOMES},
        "totals": {outcome: sum(counts[outcome] for _, counts in minutes) for outcome in stats.OUTCOMES},
    }


@dataclass
class PublishJob:
    id: str
    what: str


def jobs(client: DataClient, queue_client: redis.Redis, instance_id: str, publish_id: str,
         record: dict[str, Any]) -> list[PublishJob]:
    """The RQ jobs of a publish that /rq can show: those of its unfinished
    work items (finished jobs leave nothing behind), and its ``undelivered``
    jobs among the newest failed ones."""
    found = [PublishJob(job_id(publish_id, item, gen), "fan-out" if item == "fanout" else f"batch {item}")
             for item, gen in work.unfinished(client, instance_id, publish_id)]
    if int(record.get("failed") or 0):
        registry = FailedJobRegistry(DELIVERY_QUEUE, connection=queue_client)
        ids = registry.get_job_ids(0, FAILED_JOBS_CHECKED - 1, desc=True, cleanup=False)
        for job in Job.fetch_many(ids, connection=queue_client):
            if job is None or not (job.func_name or "").endswith(".undelivered"):
                continue
            if list(job.args[1:2]) == [publish_id]:
                found.append(PublishJob(job.id, f"undelivered: {len(job.args[2])} device(s)"))
    return found


def targets(record: dict[str, Any]) -> str:
    """What a publish was sent to, as "kind: a, b"."""
    try:
        names = json.loads(record.get("targets") or "[]")
    except ValueError:
        names = []
    return f"{record.get('kind', '?')}: {', '.join(str(n) for n in names)}"


def title_and_body(payload: dict[str, Any]) -> tuple[str, str]:
    """The title and body of one provider's payload (as the outbox keeps it)."""
    for path in (("notification",), ("aps", "alert")):
        found: Any = payload
        for key in path:
            found = found.get(key) if isinstance(found, dict) else None
        if isinstance(found, dict):
            return str(found.get("title") or ""), str(found.get("body") or "")
        if isinstance(found, str):
            return "", found
    content = payload.get("content")  # a Matrix notification
    body = content.get("body") if isinstance(content, dict) else None
    return str(payload.get("room_name") or ""), str(body or "")


def when(timestamp: Any) -> str:
    """A unix time as UTC, for the pages."""
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
