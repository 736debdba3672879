"""Client addresses as linking keys: the address itself, its /24 (IPv4) or /48 (IPv6) prefix, and a wider
"ASN-like" prefix (/16 or /32) standing in for the autonomous system when no ASN database is at hand."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class AddressKeys:
    ip: str  # the canonical text form ("2001:db8::1", never "2001:0db8:0:0::1")
    prefix: str  # "203.0.113.0/24", "2001:db8:1::/48"
    network: str  # "203.0.0.0/16", "2001:db8::/32": an ASN-like neighbourhood


@lru_cache(maxsize=65_536)
def address_keys(text: str) -> AddressKeys | None:
    """The linking keys of a client address, or None when it is not an IP address (malformed, a host name)."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    narrow, wide = (24, 16) if ip.version == 4 else (48, 32)
    return AddressKeys(
        str(ip),
        str(ipaddress.ip_network(f"{ip}/{narrow}", strict=False)),
        str(ipaddress.ip_network(f"{ip}/{wide}", strict=False)),
    )
