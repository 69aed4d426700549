"""The outbound address guard: which URLs and addresses the server may call."""

from __future__ import annotations

import ipaddress

import pytest

from fabric_server.net.guard import AddressGuard, BlockedAddress, is_public, parse_host_address
from fabric_server.settings import Settings

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space
    "0.0.0.0",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "2002:7f00:1::",  # 6to4 around 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 around 10.0.0.1
    "2001:db8::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_private_loopback_and_reserved_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(BlockedAddress):
        AddressGuard().check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))
    AddressGuard().check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("deadbeef.example", None),
    ],
)
def test_hosts_written_as_addresses_are_recognised_in_every_notation(
    host: str, expected: str | None
) -> None:
    parsed = parse_host_address(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com/hooks",
        "https://",
        "https://user:pass@example.com/hooks",
        "https://user@example.com/hooks",
        "https://example.com:0/hooks",
        "https://example.com:99999/hooks",
        "https://exa mple.com/hooks",
        "https://example.com/\nhooks",
        "https://example.com/" + "a" * 2048,
        "http://127.0.0.1:8080/hooks",
        "http://localhost/hooks",
        "http://api.localhost./hooks",
        "http://2130706433/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(BlockedAddress):
        AddressGuard(allow_private=False).check_url(url)


def test_public_urls_pass_without_any_lookup() -> None:
    guard = AddressGuard(allow_private=False)
    for url in ("https://example.com/hooks", "http://93.184.216.34:8080/x?y=1", "https://h.test"):
        guard.check_url(url)


def test_allow_private_lets_loopback_through_but_not_malformed_urls() -> None:
    guard = AddressGuard(allow_private=True)
    guard.check_url("http://127.0.0.1:9000/hooks")
    guard.check_url("http://localhost/hooks")
    with pytest.raises(BlockedAddress):
        guard.check_url("http://user:pw@127.0.0.1/")


def test_allowed_networks_restrict_addresses_further() -> None:
    guard = AddressGuard.build(allow_private=True, allowed_networks=["127.0.0.0/8", "::1/128"])
    guard.check_address(ipaddress.ip_address("127.0.0.1"))
    guard.check_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    for outside in ("10.0.0.1", "8.8.8.8"):
        with pytest.raises(BlockedAddress, match="outside the networks"):
            guard.check_address(ipaddress.ip_address(outside))


def test_private_targets_default_to_allowed_only_in_dev_mode() -> None:
    assert Settings(env="development").webhook_private_allowed
    production = Settings(env="production")
    assert not production.webhook_private_allowed
    assert not Settings(env="development", host="0.0.0.0").webhook_private_allowed
    assert Settings(env="production", webhook_allow_private=True).webhook_private_allowed
