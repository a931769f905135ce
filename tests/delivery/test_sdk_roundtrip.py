"""The Beams Python server SDK (`pusher_push_notifications`), unmodified,
against pushlite served over HTTPS on 127.0.0.1: publish to interests and to
users, a user token used on Set User Id, delete user, and the SDK's own errors.
The publishes go on to the local APNs and FCM mocks."""
from __future__ import annotations

import datetime
import ipaddress
import threading
from collections.abc import Iterator

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pusher_push_notifications import (
    PushNotifications,
    PusherAuthError,
    PusherMissingInstanceError,
    PusherValidationError,
)
from werkzeug.serving import make_server

from tests.delivery.conftest import ALERT, FCM, drain

APNS_TOKEN = "5d" * 32
FCM_TOKEN = "fcm-sdk-token-0000000000001"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for IP 127.0.0.1: (cert file, key file); the
    cert file is also the CA file the client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pushlite test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def https(delivery_app, certificate) -> Iterator[str]:
    """The app served over HTTPS in a thread; yields "127.0.0.1:<port>"."""
    server = make_server("127.0.0.1", 0, delivery_app, threaded=True, ssl_context=certificate)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def device_api(https, certificate) -> Iterator[requests.Session]:
    """What a mobile SDK would do, over the same HTTPS endpoint."""
    with requests.Session() as session:
        session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment wins over `verify`
        session.verify = certificate[0]
        yield session


def sdk(instance_id: str, secret: str, endpoint: str, ca_file: str) -> PushNotifications:
    beams = PushNotifications(instance_id, secret, endpoint=endpoint)
    beams.session.verify = ca_file  # the SDK sends with session.send, which ignores REQUESTS_CA_BUNDLE
    return beams


def register(session: requests.Session, endpoint: str, instance_id: str, platform: str, token: str,
             interests: list[str]) -> str:
    base = f"https://{endpoint}/device_api/v1/instances/{instance_id}/devices"
    body = {"token": token, **({"bundleIdentifier": "com.example.app"} if platform == "apns" else {})}
    response = session.post(f"{base}/{platform}", json=body)
    assert response.status_code == 200, response.text
    device_id = response.json()["id"]
    put = session.put(f"{base}/{platform}/{device_id}/interests", json={"interests": interests})
    assert put.status_code == 200, put.text
    return device_id


def test_the_beams_sdk_works_unmodified(https, device_api, certificate, web, runtime, tenant, apns_mock, fcm_mock):
    iid = tenant["id"]
    beams = sdk(iid, tenant["secret_key"], https, certificate[0])
    apns_id = register(device_api, https, iid, "apns", APNS_TOKEN, ["news"])
    fcm_id = register(device_api, https, iid, "fcm", FCM_TOKEN, ["news"])

    # Publish to interests.
    published = beams.publish_to_interests(["news"], {"apns": ALERT, "fcm": FCM})
    assert set(published) == {"publishId"}
    record = drain(runtime, web, tenant, published["publishId"])
    assert (record["status"], record["delivered"]) == ("done", 2)
    assert [r.token for r in apns_mock.requests] == [APNS_TOKEN]
    assert [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]

    # The SDK's user token sets the user id of the FCM device.
    token = beams.generate_token("alice@example.com")["token"]
    set_user = device_api.put(f"https://{https}/device_api/v1/instances/{iid}/devices/fcm/{fcm_id}/user",
                              headers={"Authorization": f"Bearer {token}"})
    assert set_user.status_code == 200, set_user.text

    # Publish to users reaches only alice's device.
    apns_mock.reset()
    fcm_mock.reset()
    to_users = beams.publish_to_users(["alice@example.com"], {"apns": ALERT, "fcm": FCM})
    record = drain(runtime, web, tenant, to_users["publishId"])
    assert (record["status"], record["targeted"], record["delivered"]) == ("done", 1, 1)
    assert apns_mock.requests == [] and [m["token"] for m in fcm_mock.messages] == [FCM_TOKEN]

    # Delete user removes the device; the other one stays.
    assert beams.delete_user("alice@example.com") is None
    base = f"https://{https}/device_api/v1/instances/{iid}/devices"
    assert device_api.get(f"{base}/fcm/{fcm_id}").status_code == 404
    assert device_api.get(f"{base}/apns/{apns_id}").status_code == 200


def test_the_sdk_raises_its_own_errors(https, certificate, web, runtime, tenant):
    wrong = sdk(tenant["id"], "not-the-secret", https, certificate[0])
    with pytest.raises(PusherAuthError):
        wrong.publish_to_interests(["news"], {"fcm": FCM})
    with pytest.raises(PusherAuthError):
        wrong.publish_to_users(["alice"], {"fcm": FCM})
    with pytest.raises(PusherAuthError):
        wrong.delete_user("alice")

    missing = sdk("00000000-0000-4000-8000-000000000000", tenant["secret_key"], https, certificate[0])
    with pytest.raises(PusherMissingInstanceError):
        missing.publish_to_interests(["news"], {"fcm": FCM})

    right = sdk(tenant["id"], tenant["secret_key"], https, certificate[0])
    with pytest.raises(PusherValidationError):
        right.publish_to_interests(["news"], {"web": {"data": {"pusher": "the key Beams keeps for itself"}}})
    with pytest.raises(PusherValidationError):
        right.publish_to_interests(["news"], {"fcm": {"data": {"big": "x" * 5000}}})


def test_the_certificate_is_really_checked(https, tenant):
    """Without the CA file the SDK refuses the connection: TLS is in play."""
    beams = PushNotifications(tenant["id"], tenant["secret_key"], endpoint=https)
    with pytest.raises(requests.exceptions.SSLError):
        beams.publish_to_interests(["news"], {"fcm": FCM})
