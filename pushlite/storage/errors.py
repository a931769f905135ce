"""Domain exceptions raised by the storage layer; each API family translates
them into its own error shape."""


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
