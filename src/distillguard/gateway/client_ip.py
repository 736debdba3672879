"""The client's address, believing X-Forwarded-For only as far as it was written by trusted proxies."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


class ClientIPResolver:
    """Walk X-Forwarded-For from the right, past trusted proxies; the first address not trusted is the client.

    With no trusted proxies configured the header is ignored: anyone can write it.
    """

    def __init__(self, trusted: list[str]) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in trusted)
        self._trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def trusted(self, peer: str | None) -> bool:
        """Whether ``peer`` is one of the trusted proxies (whose forwarded headers are believed)."""
        return bool(self._networks) and peer is not None and self._trusted(peer)

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if not self._networks or peer is None or not forwarded_for or not self._trusted(peer):
            return peer
        closest_trusted = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            if not hop:
                continue
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                # A malformed entry ends the chain we can believe.
                return closest_trusted
            if not self._trusted(hop):
                return hop
            closest_trusted = hop
        return closest_trusted
