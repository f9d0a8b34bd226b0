from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.network.whitelist import (
    EgressRule,
    WhitelistPolicy,
    parse_entries,
    parse_entry,
    resolve_entries,
)

GOOD = [
    ("192.0.2.10:443", "192.0.2.10/32", "tcp", 443),
    ("192.0.2.10:443/tcp", "192.0.2.10/32", "tcp", 443),
    ("192.0.2.53:53/udp", "192.0.2.53/32", "udp", 53),
    ("192.0.2.53:53/UDP", "192.0.2.53/32", "udp", 53),
    ("10.1.0.0/16:5432", "10.1.0.0/16", "tcp", 5432),
    (" 10.0.0.0/8:1 ", "10.0.0.0/8", "tcp", 1),
    ("198.51.100.0/24:65535/udp", "198.51.100.0/24", "udp", 65535),
]


@pytest.mark.parametrize(("text", "network", "proto", "port"), GOOD)
def test_valid_entries_parse(text: str, network: str, proto: str, port: int) -> None:
    assert parse_entry(text) == EgressRule(IPv4Network(network), proto, port)  # type: ignore[arg-type]


BAD = [
    ("192.0.2.10", "not of the form ADDRESS:PORT"),
    ("192.0.2.10:", "not of the form ADDRESS:PORT"),
    ("", "not of the form ADDRESS:PORT"),
    ("192.0.2.10:http", "port 'http' is not a number"),
    ("192.0.2.10:0", "port 0 is out of range"),
    ("192.0.2.10:65536", "port 65536 is out of range"),
    ("192.0.2.10:443/sctp", "protocol 'sctp' is not supported"),
    ("example.org:443", "is a host name, and names are not resolved here"),
    ("300.1.2.3:443", "is not an IPv4 address or network"),
    ("10.1.2.3/16:443", "has host bits set"),
    ("0.0.0.0/0:443", "opens the whole internet"),
    ("10.0.0.0/7:443", "/7 is wider than this site allows"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_invalid_entries_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse_entry(text)
    assert info.value.hint


def test_site_minimum_prefix_applies() -> None:
    strict = WhitelistPolicy(min_prefix=24)
    assert parse_entry("192.0.2.0/24:443", strict).network.prefixlen == 24
    with pytest.raises(
        InvalidInput, match=re.escape("/16 is wider than this site allows (at most /24)")
    ):
        parse_entry("10.1.0.0/16:443", strict)


def test_a_site_that_allows_wide_entries_accepts_the_whole_internet() -> None:
    rule = parse_entry("0.0.0.0/0:443", WhitelistPolicy(allow_wide=True))
    assert rule.network == IPv4Network("0.0.0.0/0")


def test_entries_are_deduplicated_sorted_and_print_back() -> None:
    rules = parse_entries(["192.0.2.53:53/udp", "10.1.0.0/16:5432", "192.0.2.53:53/udp"])
    assert [str(r) for r in rules] == ["10.1.0.0/16:5432", "192.0.2.53:53/udp"]


NAMES = {
    "data.example.org": [IPv4Address("192.0.2.20"), IPv4Address("192.0.2.21")],
    "nowhere.example.org": [],
}


def _resolve(name: str) -> list[IPv4Address]:
    return NAMES[name]


def test_names_become_one_rule_per_address_of_the_callers_resolver() -> None:
    rules = resolve_entries(
        ["data.example.org:443", "data.example.org:53/udp", "10.1.0.0/16:22"], _resolve
    )
    assert [str(r) for r in rules] == [
        "10.1.0.0/16:22",
        "192.0.2.20:443",
        "192.0.2.20:53/udp",
        "192.0.2.21:443",
        "192.0.2.21:53/udp",
    ]


def test_a_name_without_addresses_or_a_bad_port_is_refused() -> None:
    with pytest.raises(InvalidInput, match="has no IPv4 address"):
        resolve_entries(["nowhere.example.org:443"], _resolve)
    with pytest.raises(InvalidInput, match="port 0 is out of range"):
        resolve_entries(["data.example.org:0"], _resolve)
