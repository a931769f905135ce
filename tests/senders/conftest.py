"""Fixtures for the sender tests: test keys made at run time, local provider mocks.

Mocks are started once per session and reset before each test; each test gets
its own event loop (an `asyncio.Runner`, as a worker process keeps one) and the
senders it built are closed on that loop afterwards.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.mocks.apns_mock import APNsMock
from tests.mocks.fcm_mock import FCMMock
from tests.mocks.providers import pem
from workers.senders import Sender, SenderSettings, Target, build_sender

T = TypeVar("T")

def targets(*tokens: str, platform: str = "apns", environment: str | None = None) -> list[Target]:
    """Targets whose device id is `d-<token>`, so assertions read easily."""
    return [Target(f"d-{token}", token, platform, environment) for token in tokens]


@pytest.fixture
def fcm_credential(service_account: dict[str, Any]) -> dict[str, Any]:
    return service_account


@pytest.fixture
def run() -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """Run a coroutine on this test's one event loop."""
    with asyncio.Runner() as runner:
        yield runner.run


@pytest.fixture
def make_sender(
    run: Callable[[Coroutine[Any, Any, Any]], Any], apns_mock: APNsMock,
    fcm_mock: FCMMock, apns_credential: dict[str, Any], fcm_credential: dict[str, Any],
) -> Iterator[Callable[..., Sender]]:
    """`make_sender("apns" | "fcm", settings={...}, **credential_overrides)` against the mocks."""
    made: list[Sender] = []

    def make(provider: str, settings: dict[str, Any] | None = None, **overrides: Any) -> Sender:
        base = apns_credential if provider == "apns" else fcm_credential
        options = {
            "apns_endpoint": apns_mock.url, "fcm_endpoint": fcm_mock.url, "timeout": 5.0, **(settings or {}),
        }
        sender = build_sender(provider, {**base, **overrides}, SenderSettings(**options))
        made.append(sender)
        return sender

    yield make
    for sender in made:
        run(sender.aclose())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files (cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushlite test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_text(pem(key))
    return str(cert_file), str(key_file)
