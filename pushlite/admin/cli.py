"""`flask --app wsgi instances ...`, `credentials ...` and `publishes ...`: the
admin API and RQ Dashboard's requeue from a shell."""
from __future__ import annotations

import json
from dataclasses import asdict

import click
from flask.cli import AppGroup
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from pushlite import delivery, store
from pushlite.storage import credentials as credential_storage
from pushlite.storage import instances as storage
from pushlite.storage.errors import InstanceNotFound
from workers.jobs import undelivered
from workers.runtime import DELIVERY_QUEUE

instances = AppGroup("instances", help="Create, list and delete pushlite instances.")


@instances.command("create")
@click.argument("name")
def create(name: str) -> None:
    """Create an instance and print it with its secret key (shown only now)."""
    click.echo(json.dumps(asdict(storage.create(store.client(), name)), indent=2))


@instances.command("list")
def list_() -> None:
    """List instances (without secret keys)."""
    for instance in storage.list_all(store.client()):
        click.echo(f"{instance.id}\t{instance.name}\t{instance.created_at}")


@instances.command("delete")
@click.argument("instance_id")
def delete(instance_id: str) -> None:
    """Delete an instance and all its data."""
    try:
        storage.delete(store.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(f"deleted {instance_id}")


@instances.command("rotate-secret")
@click.argument("instance_id")
def rotate_secret(instance_id: str) -> None:
    """Give an instance a new secret key and print it (the old one stops working)."""
    try:
        instance = storage.rotate_secret(store.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(instance.secret_key)


credentials = AppGroup("credentials", help="Set, list and delete an instance's provider credentials.")


def _store_credential(instance_id: str, provider: str, credential: dict) -> None:
    from pushlite.admin.credentials import store_credential
    from workers.senders import CredentialError

    try:
        summary = store_credential(instance_id, provider, credential)
    except CredentialError as exc:
        raise click.ClickException(str(exc)) from None
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(json.dumps(summary, indent=2))


@credentials.command("set-fcm")
@click.argument("instance_id")
@click.argument("service_account", type=click.File("r"))
def set_fcm(instance_id: str, service_account) -> None:
    """Store the FCM service account JSON file Google gives (encrypted at rest)."""
    try:
        credential = json.load(service_account)
    except ValueError:
        raise click.ClickException("the service account file is not JSON") from None
    _store_credential(instance_id, "fcm", credential)


@credentials.command("set-apns")
@click.argument("instance_id")
@click.option("--key-id", required=True, help="The 10-character Key ID of the .p8 key.")
@click.option("--team-id", required=True, help="The 10-character Team ID.")
@click.option("--key-file", required=True, type=click.File("r"), help="The .p8 file.")
@click.option("--topic", required=True, help="The app's bundle id.")
@click.option("--environment", type=click.Choice(["production", "development", "sandbox"]), default="production",
              show_default=True, help="For devices that do not name one.")
def set_apns(instance_id: str, key_id: str, team_id: str, key_file, topic: str, environment: str) -> None:
    """Store an APNs token key (encrypted at rest)."""
    _store_credential(instance_id, "apns", {
        "key_id": key_id, "team_id": team_id, "private_key": key_file.read(), "topic": topic,
        "environment": environment,
    })


@credentials.command("list")
@click.argument("instance_id")
def list_credentials(instance_id: str) -> None:
    """Which providers are set, with their key ids (never the keys)."""
    try:
        storage.get(store.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(json.dumps(credential_storage.summary(store.client(), delivery.fernet(), instance_id), indent=2))


@credentials.command("delete")
@click.argument("instance_id")
@click.argument("provider", type=click.Choice(["apns", "fcm"]))
def delete_credential(instance_id: str, provider: str) -> None:
    """Remove a provider credential; its devices are skipped from then on."""
    if not credential_storage.delete(store.client(), instance_id, provider):
        raise click.ClickException(f"{instance_id} has no {provider} credential")
    click.echo(f"deleted the {provider} credential of {instance_id}")


publishes = AppGroup("publishes", help="Look after publishes' delivery.")


@publishes.command("requeue")
@click.argument("publish_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every publish's undelivered devices.")
def requeue(publish_ids: tuple[str, ...], every: bool) -> None:
    """Try the undelivered devices of these publishes again, as RQ Dashboard's
    Requeue of their failed `undelivered` jobs does (each device once)."""
    if not publish_ids and not every:
        raise click.UsageError("name publish ids, or give --all")
    queue = Queue(DELIVERY_QUEUE, connection=delivery.queue().connection)
    registry = FailedJobRegistry(queue=queue)
    wanted = set(publish_ids)
    jobs = [
        job for job in Job.fetch_many(registry.get_job_ids(), connection=queue.connection)
        if job is not None and job.func_name == f"{undelivered.__module__}.{undelivered.__name__}"
        and (every or job.args[1] in wanted)
    ]
    for job in jobs:
        registry.requeue(job)
    devices = sum(len(job.args[2]) for job in jobs)
    click.echo(f"requeued {len(jobs)} undelivered job(s): {devices} device(s)")
    missing = wanted - {job.args[1] for job in jobs}
    if missing:
        raise click.ClickException(f"no undelivered devices to requeue for {', '.join(sorted(missing))}")
