"""`flask --app wsgi instances ...`, `credentials ...` and `publishes ...`: the
admin API and RQ Dashboard's requeue from a shell."""
from __future__ import annotations

import json
from dataclasses import asdict
from typing import TextIO

import click
from flask.cli import AppGroup
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from pushlite import encryption, publishing, redis_clients
from pushlite.platforms import CREDENTIAL_PROVIDERS
from pushlite.storage import apps, vapid
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
    instance = storage.create(redis_clients.client(), name)
    vapid.ensure(redis_clients.client(), encryption.fernet(), instance.id)
    click.echo(json.dumps(asdict(instance), indent=2))


@instances.command("list")
def list_() -> None:
    """List instances (without secret keys)."""
    for instance in storage.list_all(redis_clients.client()):
        click.echo(f"{instance.id}\t{instance.name}\t{instance.created_at}")


@instances.command("delete")
@click.argument("instance_id")
def delete(instance_id: str) -> None:
    """Delete an instance and all its data."""
    try:
        storage.delete(redis_clients.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(f"deleted {instance_id}")


@instances.command("default-app")
@click.argument("instance_id")
@click.argument("app_name", required=False)
def default_app(instance_id: str, app_name: str | None) -> None:
    """Show the default app (what a Twilio-style send naming no app reaches), or set it to APP_NAME."""
    try:
        if app_name is not None:
            if not apps.is_app_name(app_name):
                raise click.ClickException(f"an app name is {apps.APP_NAME_RULE}")
            apps.set_default(redis_clients.client(), instance_id, app_name)
        click.echo(apps.default_app(redis_clients.client(), instance_id) or "(none)")
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None


@instances.command("reindex")
def reindex() -> None:
    """Rebuild the instance list and the MPush token lookup from the instances
    (once after upgrading from a version with pushlite:instances)."""
    click.echo(f"indexed {storage.reindex(redis_clients.client())} instance(s)")


@instances.command("rotate-secret")
@click.argument("instance_id")
def rotate_secret(instance_id: str) -> None:
    """Give an instance a new secret key and print it (the old one stops working)."""
    try:
        instance = storage.rotate_secret(redis_clients.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(instance.secret_key)


@instances.command("rotate-vapid")
@click.argument("instance_id")
def rotate_vapid(instance_id: str) -> None:
    """Give an instance a new VAPID key pair (Web Push) and print its public key.
    Browsers subscribed with the old one must subscribe again."""
    try:
        click.echo(vapid.rotate(redis_clients.client(), encryption.fernet(), instance_id))
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None


credentials = AppGroup("credentials", help="Set, list and delete the provider credentials of an instance, or "
                                            "(--app) of one of its apps.")

app_option = click.option("--app", "app", default="", metavar="APP_NAME",
                          help="An app's credentials instead of the instance's (devices registered with that "
                               "app name are delivered with them).")


def _app(app: str) -> str:
    if app and not apps.is_app_name(app):
        raise click.ClickException(f"an app name is {apps.APP_NAME_RULE}")
    return app


def _store_credential(instance_id: str, provider: str, credential: dict, app: str) -> None:
    from pushlite.admin.credentials import store_credential
    from workers.senders import CredentialError

    try:
        summary = store_credential(instance_id, provider, credential, _app(app))
    except CredentialError as exc:
        raise click.ClickException(str(exc)) from None
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    click.echo(json.dumps(summary, indent=2))


@credentials.command("set-fcm")
@click.argument("instance_id")
@click.argument("service_account", type=click.File("r"))
@app_option
def set_fcm(instance_id: str, service_account: TextIO, app: str) -> None:
    """Store the FCM service account JSON file Google gives (encrypted at rest)."""
    try:
        credential = json.load(service_account)
    except ValueError:
        raise click.ClickException("the service account file is not JSON") from None
    _store_credential(instance_id, "fcm", credential, app)


@credentials.command("set-apns")
@click.argument("instance_id")
@click.option("--key-id", required=True, help="The 10-character Key ID of the .p8 key.")
@click.option("--team-id", required=True, help="The 10-character Team ID.")
@click.option("--key-file", required=True, type=click.File("r"), help="The .p8 file.")
@click.option("--topic", required=True, help="The app's bundle id.")
@click.option("--environment", type=click.Choice(["production", "development", "sandbox"]), default="production",
              show_default=True, help="For devices that do not name one.")
@app_option
def set_apns(instance_id: str, key_id: str, team_id: str, key_file: TextIO, topic: str, environment: str,
             app: str) -> None:
    """Store an APNs token key (encrypted at rest)."""
    _store_credential(instance_id, "apns", {
        "key_id": key_id, "team_id": team_id, "private_key": key_file.read(), "topic": topic,
        "environment": environment,
    }, app)


@credentials.command("list")
@click.argument("instance_id")
@app_option
def list_credentials(instance_id: str, app: str) -> None:
    """Which providers are set, with their key ids (never the keys)."""
    try:
        storage.get(redis_clients.client(), instance_id)
    except InstanceNotFound:
        raise click.ClickException(f"no instance {instance_id}") from None
    summary = credential_storage.summary(redis_clients.client(), encryption.fernet(), instance_id, _app(app))
    click.echo(json.dumps(summary, indent=2))


@credentials.command("delete")
@click.argument("instance_id")
@click.argument("provider", type=click.Choice(CREDENTIAL_PROVIDERS))
@app_option
def delete_credential(instance_id: str, provider: str, app: str) -> None:
    """Remove a provider credential: the instance's (its devices are skipped from then on) or an app's."""
    owner = f"app {app} of {instance_id}" if app else instance_id
    if not credential_storage.delete(redis_clients.client(), instance_id, provider, _app(app)):
        raise click.ClickException(f"{owner} has no {provider} credential")
    click.echo(f"deleted the {provider} credential of {owner}")


publishes = AppGroup("publishes", help="Look after publishes' delivery.")


@publishes.command("requeue")
@click.argument("publish_ids", nargs=-1)
@click.option("--all", "every", is_flag=True, help="Every publish's undelivered devices.")
def requeue(publish_ids: tuple[str, ...], every: bool) -> None:
    """Try the undelivered devices of these publishes again, as RQ Dashboard's
    Requeue of their failed `undelivered` jobs does (each device once)."""
    if not publish_ids and not every:
        raise click.UsageError("name publish ids, or give --all")
    queue = Queue(DELIVERY_QUEUE, connection=publishing.fanout_queue().connection)
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
