"""What devices report back about a publish (the Beams reporting API): each
device that said the notification reached it counts once in the publish's
``acknowledged``, each that said it was opened once in ``opened``, beside
``delivered`` (what the providers accepted)."""
from __future__ import annotations

from pushlite.storage.cluster import DataClient

from . import keys, records
from .errors import InstanceNotFound
from .publishes import is_publish_id
from .scripts import run

# Reporting API event -> the publish counter it counts in.
COUNTERS = {"delivery": "acknowledged", "open": "opened"}


def record(client: DataClient, instance_id: str, publish_id: str, device_id: str, event: str) -> bool:
    """Count a device's ``event`` ("delivery" or "open") of a publish, once.
    False when nothing was counted: an unknown publish (or one expired) or
    device, or a repeat. InstanceNotFound for an unknown instance.

    Ids of another shape name nothing pushlite stores (and must not reach a
    key name: ``x:failures`` would name another key of a publish), so they
    are looked up as the empty device of the empty publish: nothing."""
    if not is_publish_id(publish_id) or not records.is_device_id(device_id):
        publish_id = device_id = ""
    counted = run(
        client,
        "insights.lua",
        [
            keys.instance(instance_id),
            keys.publish(instance_id, publish_id),
            keys.publish_reported(instance_id, publish_id, event),
            keys.device_bucket(instance_id, device_id),
        ],
        [COUNTERS[event], device_id],
    )
    if counted == -1:
        raise InstanceNotFound(instance_id)
    return counted == 1
