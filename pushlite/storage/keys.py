"""The Redis key schema: the only module that spells a key.

Every key of an instance starts with the hash tag ``{<instance_id>}`` so that a
multi-key change is one atomic script on a single Redis Cluster shard. The Lua
code never builds a key: every key it touches is computed here and passed in
KEYS (``device.lua`` says how it asks for the ones it finds it needs).

Per instance:

``{iid}:instance``          hash: name, secret_key, client_token, created_at;
                            default_app (the default app name, see ``apps.py``)
                            and apps_indexed once the apps set is complete
``{iid}:d:<bbb>``           hash bucket of device records: field = device id,
                            value = the packed record (see ``records.py``);
                            ``bbb`` = the first three hex digits of the id
``{iid}:tokens``            hash: derived id -> comma-separated ids of devices
                            whose token derives to that id but which live under
                            another id (token updated, or an id collision)
``{iid}:i:<interest>``      set of device ids subscribed to an interest
``{iid}:u:<bbb>``           hash bucket of users: field = user id, value =
                            comma-separated device ids (at most 100)
``{iid}:credentials``       hash: provider (the instance's) or <app>/<provider>
                            (an app's) -> Fernet-encrypted credential JSON;
                            ``web`` is the instance's VAPID key pair
``{iid}:apps``              set of the app names devices were registered with
``{iid}:p:<publish id>``    hash: one publish's targets, payload, status and
                            counters (expires after a week)
``{iid}:p:<id>:failures``   list: the latest "device id<TAB>reason" failures
``{iid}:p:<id>:work``       sorted set: the publish's unfinished work items
                            ("fanout" and batch numbers); score = when its
                            lease expires or it is next checked (ms)
``{iid}:p:<id>:batches``    hash: per work item, ``<n>`` untried device ids,
                            ``<n>:r`` ids to retry, ``<n>:st`` its state
``{iid}:p:<id>:seen``       set: device ids already put in a batch (dedupes
                            the walk; deleted when the fan-out ends)
``{iid}:p:<id>:r:<event>``  set: device ids that reported the publish's
                            notification delivered (``delivery``) or opened
                            (``open``) through the reporting API; expires
                            with the publish
``{iid}:outbox``            list: the latest notifications a dry run recorded
``{iid}:publishes``         list: the ids of the latest publishes, newest first
                            (the console lists them; capped, see ``publishes.py``)
``{iid}:stats:<minute>``    hash: outcome -> notifications sent in the minute
                            starting at that unix time (expires, ``stats.py``)
``{iid}:census``            hash: the console's device, user and interest
                            counts, computed on demand (expires, ``census.py``)
``{iid}:auth-digests``      set: sha256 hex of every secret key and client token
                            the instance was given that may still be indexed
                            under ``pushlite:token:<digest>``

Device ids are derived from (instance, platform, token), so for almost every
device the id itself is the token index: registering a token again finds its
device without any index entry. Devices and users are kept in bucket hashes
rather than a key each, which saves the ~100 bytes of per-key overhead Redis
pays for every top-level key.

Global keys (each its own slot on a Cluster; nothing writes one in the same
atomic step as any other key):

``pushlite:instance-index`` hash: instance id -> when it was created, or
                            "deleting" while a deletion is under way
``pushlite:token:<digest>`` string: the instance whose secret key or client
                            token has this sha256 hex digest (MPush calls carry
                            no instance id; raw secrets are never stored)
``pushlite:publishes:active`` sorted set of "<iid> <publish id>" not yet done,
                            which the workers' sweep looks after
``pushlite:sweep``          the sweep's short lock
``pushlite:ready``          written by ``/readyz`` to check that Redis takes
                            writes
``pushlite:stats``          hash: the delivery counters ``/metrics`` exposes
                            (see ``stats.py``)
"""
from __future__ import annotations

INSTANCE_INDEX = "pushlite:instance-index"
# What versions before the Cluster-ready index used instead of the index and
# the token keys; ``instances.reindex`` replaces them.
LEGACY_INDEXES = ("pushlite:instances", "pushlite:tokens")
ACTIVE_PUBLISHES = "pushlite:publishes:active"
SWEEP_LOCK = "pushlite:sweep"
READY_PROBE = "pushlite:ready"
DELIVERY_STATS = "pushlite:stats"

DEVICE_BUCKET_WIDTH = 3  # hex digits of the device id -> 4,096 buckets
USER_BUCKETS = 4096


def tag(instance_id: str) -> str:
    return f"{{{instance_id}}}"


def instance(instance_id: str) -> str:
    return tag(instance_id) + ":instance"


ANY_INSTANCE = "{*}:instance"  # a SCAN pattern matching every instance hash


def instance_id_of(instance_key: str) -> str:
    return instance_key[1:instance_key.index("}")]


def instance_pattern(instance_id: str) -> str:
    """A SCAN pattern matching every key of the instance."""
    return tag(instance_id) + ":*"


def device_prefix(instance_id: str) -> str:
    return tag(instance_id) + ":d:"


def device_bucket(instance_id: str, device_id: str) -> str:
    return device_prefix(instance_id) + device_id[:DEVICE_BUCKET_WIDTH]


def token_index(instance_id: str) -> str:
    return tag(instance_id) + ":tokens"


def interest_prefix(instance_id: str) -> str:
    return tag(instance_id) + ":i:"


def interest(instance_id: str, name: str) -> str:
    return interest_prefix(instance_id) + name


def user_prefix(instance_id: str) -> str:
    return tag(instance_id) + ":u:"


def user_bucket_suffix(user_id: str) -> str:
    """The bucket of a user id: a hash of it, stable across processes."""
    h = 0
    for byte in user_id.encode("utf-8"):
        h = (h * 31 + byte) % 1000000007
    return "%03x" % (h % USER_BUCKETS)


def user_bucket(instance_id: str, user_id: str) -> str:
    return user_prefix(instance_id) + user_bucket_suffix(user_id)


def auth_digests(instance_id: str) -> str:
    return tag(instance_id) + ":auth-digests"


def instance_token(digest: str) -> str:
    return "pushlite:token:" + digest


def credentials(instance_id: str) -> str:
    return tag(instance_id) + ":credentials"


def apps(instance_id: str) -> str:
    return tag(instance_id) + ":apps"


def publish(instance_id: str, publish_id: str) -> str:
    return tag(instance_id) + ":p:" + publish_id


def publish_failures(instance_id: str, publish_id: str) -> str:
    return publish(instance_id, publish_id) + ":failures"


def publish_work(instance_id: str, publish_id: str) -> str:
    return publish(instance_id, publish_id) + ":work"


def publish_batches(instance_id: str, publish_id: str) -> str:
    return publish(instance_id, publish_id) + ":batches"


def publish_seen(instance_id: str, publish_id: str) -> str:
    return publish(instance_id, publish_id) + ":seen"


def publish_reported(instance_id: str, publish_id: str, event: str) -> str:
    """The devices that reported ``event`` ("delivery" or "open") for the publish."""
    return publish(instance_id, publish_id) + ":r:" + event


def outbox(instance_id: str) -> str:
    return tag(instance_id) + ":outbox"


def recent_publishes(instance_id: str) -> str:
    return tag(instance_id) + ":publishes"


def instance_minute(instance_id: str, minute: int) -> str:
    """The instance's delivery counts of the minute starting at ``minute`` (unix seconds)."""
    return tag(instance_id) + f":stats:{minute:d}"


def census(instance_id: str) -> str:
    return tag(instance_id) + ":census"


# --- MPush and Twilio-style families ------------------------------------------
#
# ``{iid}:mpush:devices``           hash: the app's device_id -> pushlite device id
# ``{iid}:twilio:regs``             hash: registration id -> JSON (device, user, app,
#                                   provider, token, created_at, tags)
# ``{iid}:twilio:tokens``           hash: sha256 hex of "<provider>\n<token>" ->
#                                   registration id


def mpush_devices(instance_id: str) -> str:
    return tag(instance_id) + ":mpush:devices"


def twilio_registrations(instance_id: str) -> str:
    return tag(instance_id) + ":twilio:regs"


def twilio_tokens(instance_id: str) -> str:
    return tag(instance_id) + ":twilio:tokens"
