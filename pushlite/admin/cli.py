"""`flask --app wsgi instances create|list|delete`: the admin API from a shell."""
from __future__ import annotations

import json
from dataclasses import asdict

import click
from flask.cli import AppGroup

from pushlite import store
from pushlite.storage import instances as storage
from pushlite.storage.errors import InstanceNotFound

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
