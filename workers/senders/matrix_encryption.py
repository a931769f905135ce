"""Encrypted Matrix pushers: a pusher set with ``encryption`` (method
``aes-hmac-sha256``) gets its notification's content encrypted, so that the
push gateway and the provider behind it see only what they need to route it.

The scheme, in the shape of Matrix's ``m.secret_storage.v1.aes-hmac-sha2``
(the README states it for client authors):

- the key period is the current UTC month ``YYYY-MM``, never earlier than the
  pusher's ``initial_key_period``;
- ``HKDF-SHA256(ikm = the 32 bytes the hex ``iss`` encodes, salt = 32 zero
  bytes, info = the key period in ASCII)`` gives 64 bytes: the first 32 are an
  AES-256-CTR key, the last 32 an HMAC-SHA-256 key;
- the notification's fields other than ``event_id``, ``room_id``, ``counts``
  and ``prio`` (which the gateway needs in clear) are serialized as a UTF-8
  JSON object and encrypted with AES-256-CTR under a random 16-byte IV whose
  bit 63 is cleared (``iv[8] &= 0x7f``); the MAC is HMAC-SHA-256 over the
  ciphertext;
- the gateway receives ``"encrypted": {"key_identifier", "key_period", "iv",
  "ciphertext", "mac"}`` (byte strings in unpadded standard base64) in place
  of those fields.

``check`` validates the object a client sets; ``encrypt`` applies it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

METHOD = "aes-hmac-sha256"
# What the gateway needs to route and rank a notification; everything else is encrypted.
CLEAR_FIELDS = ("event_id", "room_id", "counts", "prio")
ISS = re.compile(r"[0-9a-fA-F]{64}")
KEY_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
KEY_IDENTIFIER_MAX_CHARS = 255


class InvalidEncryption(ValueError):
    """An ``encryption`` object pushlite cannot apply; the message names the field."""


def key_period(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def check(encryption: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The pusher's ``encryption`` as stored: checked, with ``initial_key_period``
    defaulting to the current month. Raises InvalidEncryption."""
    method = encryption.get("method")
    if method != METHOD:
        raise InvalidEncryption(f"encryption.method must be {METHOD!r}, not {method!r}.")
    iss = encryption.get("iss")
    if not isinstance(iss, str) or not ISS.fullmatch(iss):
        raise InvalidEncryption("encryption.iss must be 32 bytes in hex (64 hex digits).")
    identifier = encryption.get("key_identifier")
    if not isinstance(identifier, str) or not 1 <= len(identifier) <= KEY_IDENTIFIER_MAX_CHARS:
        raise InvalidEncryption(f"encryption.key_identifier is required: a string of 1-{KEY_IDENTIFIER_MAX_CHARS} "
                                "characters.")
    initial = encryption.get("initial_key_period")
    if initial is None:
        initial = key_period(now or datetime.now(UTC))
    elif not isinstance(initial, str) or not KEY_PERIOD.fullmatch(initial):
        raise InvalidEncryption("encryption.initial_key_period must be a month, YYYY-MM.")
    return {**encryption, "initial_key_period": initial}


def unpadded_base64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def keys(iss: str, period: str) -> tuple[bytes, bytes]:
    """(AES-256 key, HMAC-SHA-256 key) of the period."""
    material = HKDF(algorithm=hashes.SHA256(), length=64, salt=bytes(32), info=period.encode()).derive(
        bytes.fromhex(iss))
    return material[:32], material[32:]


def encrypt(fields: Mapping[str, Any], encryption: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The notification fields as the gateway gets them: the clear ones, and
    the rest in ``encrypted`` (none when nothing is left to hide, e.g. with
    ``format: event_id_only``)."""
    clear = {k: v for k, v in fields.items() if k in CLEAR_FIELDS}
    secret = {k: v for k, v in fields.items() if k not in CLEAR_FIELDS}
    if not secret:
        return clear
    period = max(key_period(now or datetime.now(UTC)), encryption["initial_key_period"])
    aes_key, mac_key = keys(encryption["iss"], period)
    iv = bytearray(os.urandom(16))
    iv[8] &= 0x7F
    plaintext = json.dumps(secret, separators=(",", ":"), ensure_ascii=False).encode()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CTR(bytes(iv))).encryptor()
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    mac = hmac.new(mac_key, ciphertext, hashlib.sha256).digest()
    clear["encrypted"] = {
        "key_identifier": encryption["key_identifier"],
        "key_period": period,
        "iv": unpadded_base64(bytes(iv)),
        "ciphertext": unpadded_base64(ciphertext),
        "mac": unpadded_base64(mac),
    }
    return clear
