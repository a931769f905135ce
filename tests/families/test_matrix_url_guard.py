"""The URL guard on Matrix gateway URLs (``pushlite.url_guard``): only URLs the
allowlist matches, and by default only public addresses, in IPv4 and IPv6;
checked at registration (here) and again at delivery (test_matrix_delivery)."""
from __future__ import annotations

import socket

import pytest

from pushlite.app import create_app
from pushlite.url_guard import UnsafeURL, allowed, check, is_public
from tests.conftest import ADMIN
from tests.families.conftest_matrix import auth

NOTIFY = "/_matrix/push/v1/notify"


def resolver(*addresses: str):
    """A resolver that answers every name with these addresses."""
    def resolve(host, port, type=0):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolve


def failing_resolver(host, port, type=0):
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("url", [
    "https://127.0.0.1" + NOTIFY,
    "https://127.8.9.10" + NOTIFY,
    "https://10.0.0.1" + NOTIFY,
    "https://172.16.5.4" + NOTIFY,
    "https://192.168.1.1" + NOTIFY,
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.1.1" + NOTIFY,
    "https://100.64.0.1" + NOTIFY,  # shared address space (carrier NAT)
    "https://0.0.0.0" + NOTIFY,
    "https://224.0.0.1" + NOTIFY,
    "https://240.0.0.1" + NOTIFY,
    "https://255.255.255.255" + NOTIFY,
    "https://192.0.2.1" + NOTIFY,  # documentation range
    "https://[::1]" + NOTIFY,
    "https://[::]" + NOTIFY,
    "https://[fe80::1]" + NOTIFY,
    "https://[fc00::1]" + NOTIFY,
    "https://[fd00:ec2::254]" + NOTIFY,  # AWS metadata over IPv6
    "https://[ff02::1]" + NOTIFY,
    "https://[::ffff:127.0.0.1]" + NOTIFY,
    "https://[::ffff:169.254.169.254]" + NOTIFY,
    "https://[2002:7f00:1::]" + NOTIFY,  # 6to4 wrapping 127.0.0.1
    "https://[64:ff9b::a00:1]" + NOTIFY,  # NAT64 wrapping 10.0.0.1
    "https://localhost" + NOTIFY,  # a name resolving to 127.0.0.1
    "https://2130706433" + NOTIFY,  # 127.0.0.1 spelled as a number
])
def test_non_public_addresses_are_refused(url):
    with pytest.raises(UnsafeURL, match="non-public"):
        check(url)


def test_a_name_resolving_to_loopback_is_refused():
    with pytest.raises(UnsafeURL, match=r"non-public address \(127.0.0.1\)"):
        check("https://gateway.example.com" + NOTIFY, resolve=resolver("127.0.0.1"))


def test_one_private_address_among_public_ones_is_enough_to_refuse():
    with pytest.raises(UnsafeURL, match="non-public"):
        check("https://gateway.example.com" + NOTIFY, resolve=resolver("1.1.1.1", "10.1.1.1"))


def test_a_name_resolving_to_ipv6_loopback_is_refused():
    with pytest.raises(UnsafeURL, match="non-public"):
        check("https://gateway.example.com" + NOTIFY, resolve=resolver("::1"))


def test_a_public_name_is_allowed_and_its_addresses_kept():
    destination = check("https://push.example.com:8443" + NOTIFY + "?a=1",
                        resolve=resolver("93.184.216.34", "2606:2800:220:1::1"))
    assert destination.addresses == ("93.184.216.34", "2606:2800:220:1::1")
    assert (destination.host, destination.port, destination.target) == ("push.example.com", 8443, NOTIFY + "?a=1")
    assert destination.pinned_url("2606:2800:220:1::1") == f"https://[2606:2800:220:1::1]:8443{NOTIFY}?a=1"
    assert destination.authority == "push.example.com:8443"


@pytest.mark.parametrize("url", ["https://1.1.1.1" + NOTIFY, "https://[2606:4700:4700::1111]" + NOTIFY])
def test_public_literals_are_allowed(url):
    assert check(url).addresses


def test_an_unresolvable_host_is_refused():
    with pytest.raises(UnsafeURL, match="cannot be resolved"):
        check("https://nowhere.invalid" + NOTIFY, resolve=failing_resolver)


@pytest.mark.parametrize("url, text", [
    ("http://1.1.1.1" + NOTIFY, "allowlist"),  # the default allows https only
    ("ftp://1.1.1.1/x", "http(s)"),
    ("file:///etc/passwd", "http(s)"),
    ("gopher://1.1.1.1/", "http(s)"),
    ("https://user:pw@1.1.1.1" + NOTIFY, "user info"),
    ("https://1.1.1.1@127.0.0.1" + NOTIFY, "user info"),
    ("https://" + NOTIFY, "host"),
    ("https://1.1.1.1:99999" + NOTIFY, "malformed"),
    ("https://1.1.1.1 /x", "ASCII"),
    ("https://例え.jp" + NOTIFY, "ASCII"),
    ("https://1.1.1.1\n" + NOTIFY, "ASCII"),
    (None, "ASCII"),
    (5, "ASCII"),
])
def test_malformed_or_disallowed_urls(url, text):
    with pytest.raises(UnsafeURL, match=text.replace("(", r"\(").replace(")", r"\)")):
        check(url)


def test_allowlist_globs_restrict_urls():
    allowlist = "https://push.example.com/*, https://*.gateway.example.org/*"
    public = resolver("93.184.216.34")
    assert check("https://push.example.com" + NOTIFY, allowlist, public)
    assert check("https://eu.gateway.example.org" + NOTIFY, allowlist, public)
    with pytest.raises(UnsafeURL, match="allowlist"):
        check("https://push.example.com.evil.net" + NOTIFY, allowlist, public)
    with pytest.raises(UnsafeURL, match="allowlist"):
        check("https://other.example.com" + NOTIFY, allowlist, public)


def test_a_wildcard_in_a_globs_host_matches_hosts_only():
    """``*`` crosses ``/`` in a glob: without the host-only rule, the path of
    another host's URL could satisfy ``https://*.gateway.example.org/*``."""
    allowlist = "https://*.gateway.example.org/*"
    public = resolver("93.184.216.34")
    for url in ("https://evil.example/.gateway.example.org/x", "https://evil.example/a.gateway.example.org/"):
        with pytest.raises(UnsafeURL, match="allowlist"):
            check(url, allowlist, public)
    assert check("https://a.b.gateway.example.org/x", allowlist, public)


def test_allowed_resolves_only_hosts_whose_addresses_are_judged():
    def no_dns(*args, **kwargs):
        raise AssertionError("looked up a trusted host")

    allowed("https://push.example.com" + NOTIFY, "https://push.example.com/*", no_dns)
    with pytest.raises(UnsafeURL, match="non-public"):
        allowed("https://eu.gateway.example.org" + NOTIFY, "https://*.gateway.example.org/*", resolver("10.0.0.7"))
    with pytest.raises(UnsafeURL, match="allowlist"):
        allowed("https://other.example.com" + NOTIFY, "https://push.example.com/*", no_dns)


def test_a_wildcard_host_still_needs_public_addresses():
    with pytest.raises(UnsafeURL, match="non-public"):
        check("https://eu.gateway.example.org" + NOTIFY, "https://*.gateway.example.org/*", resolver("10.0.0.7"))


def test_a_host_the_allowlist_names_is_trusted_even_when_private():
    allowlist = "http://127.0.0.1:*/*, https://sygnal.internal/*"
    assert check("http://127.0.0.1:8008" + NOTIFY, allowlist).addresses == ("127.0.0.1",)
    assert check("https://sygnal.internal" + NOTIFY, allowlist, resolver("10.2.3.4")).addresses == ("10.2.3.4",)
    # Only that host: the glob does not open the rest of the network.
    with pytest.raises(UnsafeURL, match="allowlist"):
        check("http://10.0.0.1:8008" + NOTIFY, allowlist)
    with pytest.raises(UnsafeURL, match="user info"):
        check("http://127.0.0.1:8008@10.0.0.1" + NOTIFY, allowlist)


def test_host_case_and_trailing_dot_do_not_dodge_the_allowlist():
    public = resolver("93.184.216.34")
    assert check("https://PUSH.Example.com." + NOTIFY, "https://push.example.com/*", public).host == "push.example.com"


def test_is_public():
    assert is_public("8.8.8.8") and is_public("2001:4860:4860::8888")
    assert not any(is_public(a) for a in ("127.0.0.1", "::1", "10.1.1.1", "169.254.169.254", "fe80::1%eth0"))


# --- at registration, through the API ---------------------------------------------


def register(client, instance, url: str):
    body = {"kind": "http", "app_id": "com.example", "pushkey": "pk", "app_display_name": "A",
            "device_display_name": "D", "lang": "en", "data": {"url": url}}
    return client.post("/_matrix/client/v3/pushers/set", json=body, headers=auth(instance))


@pytest.mark.parametrize("url", [
    "https://127.0.0.1" + NOTIFY,
    "https://10.0.0.1" + NOTIFY,
    "https://169.254.169.254" + NOTIFY,
    "https://[::1]" + NOTIFY,
    "https://localhost" + NOTIFY,
    "http://1.1.1.1" + NOTIFY,
])
def test_registration_refuses_unsafe_gateway_urls(client, instance, url):
    response = register(client, instance, url)
    assert response.status_code == 400
    assert response.get_json()["errcode"] == "M_INVALID_PARAM"
    assert response.get_json()["error"].startswith("data.url")


def test_the_allowlist_comes_from_config(deployment):
    app = create_app(deployment.config(PUSHLITE_MATRIX_GATEWAY_ALLOWLIST="http://127.0.0.1:*/*"))
    client = app.test_client()
    instance = client.post("/admin/v1/instances", json={"name": "t"}, headers=ADMIN).get_json()
    assert register(client, instance, "http://127.0.0.1:8008" + NOTIFY).status_code == 200
    # The override replaces the default: public https is no longer allowed.
    assert register(client, instance, "https://1.1.1.1" + NOTIFY).status_code == 400
