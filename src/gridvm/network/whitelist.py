"""Parse and validate egress whitelist entries (pure; IPv4 only for now).

An entry is ``ADDRESS:PORT`` or ``CIDR:PORT``, optionally followed by
``/tcp`` (the default) or ``/udp``: ``192.0.2.10:443``, ``10.1.0.0/16:5432``,
``192.0.2.53:53/udp``. Host names are not resolved here: the parser refuses
them with a message saying so, and the caller (which may do I/O) resolves a
name to addresses and passes those in. A network wider than the site's
minimum prefix length (``0.0.0.0/0`` above all) is refused unless the site
allows wide entries.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from gridvm.common.errors import InvalidInput

Proto = Literal["tcp", "udp"]

# The default narrowest-allowed prefix: a whole /8 is the widest a VM may ask for.
DEFAULT_MIN_PREFIX = 8

_ENTRY_RE = re.compile(r"(?P<target>[^:\s]+):(?P<port>[^/\s]+)(?:/(?P<proto>[A-Za-z]+))?")
_HOSTNAME_RE = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_FORMAT_HINT = (
    "write ADDRESS:PORT or CIDR:PORT, with /udp for UDP: 192.0.2.10:443, 10.1.0.0/16:5432/udp"
)


@dataclass(frozen=True, order=True)
class EgressRule:
    """Outbound traffic to ``network`` on ``proto``/``port`` is allowed."""

    network: ipaddress.IPv4Network
    proto: Proto
    port: int

    def __str__(self) -> str:
        target = (
            str(self.network.network_address) if self.network.prefixlen == 32 else str(self.network)
        )
        suffix = "/udp" if self.proto == "udp" else ""
        return f"{target}:{self.port}{suffix}"


@dataclass(frozen=True)
class WhitelistPolicy:
    """What the site lets a whitelist entry say."""

    min_prefix: int = DEFAULT_MIN_PREFIX
    allow_wide: bool = False  # True: any prefix, 0.0.0.0/0 included


def parse_entry(text: str, policy: WhitelistPolicy = WhitelistPolicy()) -> EgressRule:
    """One entry as an :class:`EgressRule`; raises InvalidInput saying what is wrong."""
    entry = text.strip()
    match = _ENTRY_RE.fullmatch(entry)
    if match is None:
        raise InvalidInput(
            f"egress entry {text!r} is not of the form ADDRESS:PORT", hint=_FORMAT_HINT
        )
    target, port_text, proto_text = match["target"], match["port"], match["proto"]
    network = _parse_target(text, target)
    port = _parse_port(text, port_text)
    proto = _parse_proto(text, proto_text)
    _check_width(text, network, policy)
    return EgressRule(network=network, proto=proto, port=port)


def parse_entries(
    texts: list[str] | tuple[str, ...], policy: WhitelistPolicy = WhitelistPolicy()
) -> tuple[EgressRule, ...]:
    """All entries, de-duplicated and sorted; the first bad one raises InvalidInput."""
    return tuple(sorted({parse_entry(t, policy) for t in texts}))


Resolver = Callable[[str], Sequence[ipaddress.IPv4Address]]


def resolve_entries(
    texts: Sequence[str], resolve: Resolver, policy: WhitelistPolicy = WhitelistPolicy()
) -> tuple[EgressRule, ...]:
    """Like :func:`parse_entries`, but a ``name:port`` entry becomes one rule per address.

    ``resolve`` (the caller's I/O, e.g. a DNS lookup) maps a host name to its IPv4
    addresses; a name it maps to nothing is refused. The addresses are taken at the
    time of the call: the rules do not follow later DNS changes.
    """
    rules: set[EgressRule] = set()
    for text in texts:
        match = _ENTRY_RE.fullmatch(text.strip())
        target = match["target"] if match else ""
        if match and _is_name(target):
            addresses = resolve(target)
            if not addresses:
                raise InvalidInput(
                    f"egress entry {text!r}: the name {target!r} has no IPv4 address",
                    hint="check the spelling, or give the address instead",
                )
            suffix = f"/{match['proto']}" if match["proto"] else ""
            for address in addresses:
                rules.add(parse_entry(f"{address}:{match['port']}{suffix}", policy))
        else:
            rules.add(parse_entry(text, policy))
    return tuple(sorted(rules))


def _is_name(target: str) -> bool:
    return bool(_HOSTNAME_RE.fullmatch(target)) and not target.replace(".", "").isdigit()


def _parse_target(text: str, target: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(target, strict=True)
    except ValueError:
        if "/" in target:
            try:
                ipaddress.ip_network(target, strict=False)
            except ValueError:
                pass
            else:
                raise InvalidInput(
                    f"egress entry {text!r}: {target} has host bits set",
                    hint="give the network address of the range, e.g. 10.1.0.0/16",
                ) from None
        if _is_name(target):
            raise InvalidInput(
                f"egress entry {text!r}: {target!r} is a host name, "
                "and names are not resolved here",
                hint="resolve the name first and give its IPv4 address(es), e.g. 192.0.2.10:443",
            ) from None
        raise InvalidInput(
            f"egress entry {text!r}: {target!r} is not an IPv4 address or network",
            hint=_FORMAT_HINT,
        ) from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise InvalidInput(
            f"egress entry {text!r}: only IPv4 is supported for now", hint=_FORMAT_HINT
        )
    return network


def _parse_port(text: str, port_text: str) -> int:
    if not port_text.isdigit():
        raise InvalidInput(
            f"egress entry {text!r}: port {port_text!r} is not a number",
            hint="give one port number from 1 to 65535",
        )
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidInput(
            f"egress entry {text!r}: port {port} is out of range",
            hint="give one port number from 1 to 65535",
        )
    return port


def _parse_proto(text: str, proto_text: str | None) -> Proto:
    if proto_text is None or proto_text.lower() == "tcp":
        return "tcp"
    if proto_text.lower() == "udp":
        return "udp"
    raise InvalidInput(
        f"egress entry {text!r}: protocol {proto_text!r} is not supported",
        hint="end the entry with /tcp (the default) or /udp",
    )


def _check_width(text: str, network: ipaddress.IPv4Network, policy: WhitelistPolicy) -> None:
    if policy.allow_wide:
        return
    if network.prefixlen == 0:
        raise InvalidInput(
            f"egress entry {text!r} opens the whole internet, which this site does not allow",
            hint="name the hosts or networks the VM needs to reach",
        )
    if network.prefixlen < policy.min_prefix:
        raise InvalidInput(
            f"egress entry {text!r}: /{network.prefixlen} is wider than this site allows "
            f"(at most /{policy.min_prefix})",
            hint=f"use a network of prefix length {policy.min_prefix} or longer",
        )
