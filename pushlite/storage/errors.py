"""Domain exceptions raised by the storage layer; each API family translates
them into its own error shape. Also which Redis errors mean "try again"."""
from __future__ import annotations

import redis
from redis.exceptions import AskError, ClusterError, ReadOnlyError, ResponseError, SlotNotCoveredError, TryAgainError


class StorageError(Exception):
    """Base class for storage outcomes a caller must handle."""


class InstanceNotFound(StorageError):
    pass


class DeviceNotFound(StorageError):
    pass


class UserAlreadySet(StorageError):
    """The device already belongs to another user (Beams allows one)."""


class UserDeviceLimit(StorageError):
    """The user already has the maximum number of devices."""


class InterestLimit(StorageError):
    """The device would exceed the maximum number of interests."""


# Redis errors that mean "not reachable or not writable right now": down,
# hung, loading, a replica during a failover, a Cluster slot moving or without
# a master, too few replicas. Nothing was applied; the caller may try again.
# Any other Redis error is a bug.
UNAVAILABLE = (
    redis.ConnectionError,  # MasterNotFoundError (Sentinel) and BusyLoadingError too
    redis.TimeoutError,
    ReadOnlyError,
    ClusterError,  # ClusterDownError, MasterDownError, "TTL exhausted" (redirects without end)
    TryAgainError,
    AskError,  # MovedError too: a redirect that was not followed to its end
    SlotNotCoveredError,
)
_UNAVAILABLE_CODES = ("NOREPLICAS", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "LOADING")


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_UNAVAILABLE_CODES)
