"""Where calls come from: client IP addresses and user agents.

The address plan is fictional but shaped like the real Internet, because a detector will lean on it:

- *residential* prefixes (home broadband, mobile) and *datacenter* prefixes (cloud regions, hosting);
- **shared NATs** (universities, companies, mobile carrier-grade NAT) and **cloud egress** addresses (notebook
  services, serverless platforms, corporate VPN exits) that many BENIGN accounts share, so "many accounts on one
  IP" is not by itself evidence of a campaign;
- **proxy pools** of residential and datacenter exits, sold by a few providers; hydra campaigns rotate through
  slices of them, and slices of different campaigns overlap because they buy from the same providers.

User agents follow the same idea: SDK versions spread over time, scripts use ``python-requests``/``curl``/
``httpx``, and attackers mostly use the same SDKs as everyone else.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from distillguard.simulate.rng import derive_rng

# First two octets of /16s. Residential: broadband and mobile carriers; datacenter: clouds and hosters.
RESIDENTIAL_16 = (
    (24, 12), (24, 130), (67, 160), (68, 40), (71, 190), (73, 15), (76, 102), (98, 210), (99, 45),
    (2, 204), (5, 148), (31, 16), (37, 120), (46, 114), (77, 8), (79, 224), (81, 57), (86, 131),
    (88, 65), (91, 64), (93, 36), (109, 190), (151, 40), (176, 3), (178, 26), (188, 150), (213, 47),
    (1, 36), (14, 102), (27, 109), (36, 112), (39, 108), (49, 205), (58, 180), (101, 96), (110, 74),
    (112, 203), (114, 32), (115, 165), (118, 36), (121, 128), (122, 160), (124, 82), (125, 33),
    (175, 114), (180, 150), (183, 88), (189, 54), (177, 84), (186, 220), (190, 16), (200, 150),
    (201, 17), (41, 113), (102, 89), (105, 112), (197, 210), (95, 24), (94, 25), (85, 140),
)  # fmt: skip
DATACENTER_16 = (
    (3, 88), (13, 57), (18, 204), (34, 82), (34, 139), (35, 196), (35, 230), (44, 201), (52, 14),
    (52, 95), (54, 172), (54, 203), (20, 51), (20, 163), (40, 78), (51, 104), (104, 42), (104, 197),
    (138, 68), (139, 59), (143, 198), (146, 190), (157, 230), (159, 65), (161, 35), (164, 90),
    (167, 99), (168, 119), (172, 104), (45, 33), (45, 77), (64, 227), (66, 42), (95, 217), (185, 220),
    (193, 148), (195, 201), (5, 161), (51, 15), (141, 94), (149, 202), (23, 94), (47, 88), (8, 218),
)  # fmt: skip
IPV6_RESIDENTIAL = ("2a02:8108", "2a01:cb00", "2601:645", "2600:1700", "2409:8a00", "2804:14c", "2001:b07")


def _ipv4(rng: random.Random, prefixes: Sequence[tuple[int, int]]) -> str:
    a, b = prefixes[rng.randrange(len(prefixes))]
    return f"{a}.{b}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def residential_ip(rng: random.Random) -> str:
    # About one home connection in eight reaches the API over IPv6.
    if rng.random() < 0.12:
        prefix = IPV6_RESIDENTIAL[rng.randrange(len(IPV6_RESIDENTIAL))]
        return f"{prefix}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}"
    return _ipv4(rng, RESIDENTIAL_16)


def datacenter_ip(rng: random.Random) -> str:
    return _ipv4(rng, DATACENTER_16)


class Network:
    """The shared address pools of one simulated run (derived from the seed, identical for all accounts)."""

    def __init__(self, seed: int) -> None:
        rng = derive_rng(seed, "network")
        # Universities, offices, mobile CGNAT: residential-looking prefixes, each shared by many benign users.
        self.shared_nats: tuple[str, ...] = tuple(_ipv4(rng, RESIDENTIAL_16) for _ in range(48))
        # Notebook services, serverless platforms, corporate VPN exits: datacenter prefixes, many benign tenants.
        self.cloud_egress: tuple[str, ...] = tuple(_ipv4(rng, DATACENTER_16) for _ in range(40))
        # Consumer VPN exits: some privacy-minded casual users come from here, as do some attackers.
        self.vpn_exits: tuple[str, ...] = tuple(_ipv4(rng, DATACENTER_16) for _ in range(30))
        # Proxy providers' exits (residential proxies are real home connections, so they look residential).
        self.residential_proxies: tuple[str, ...] = tuple(residential_ip(rng) for _ in range(6000))
        self.datacenter_proxies: tuple[str, ...] = tuple(_ipv4(rng, DATACENTER_16) for _ in range(1500))

    def proxy_pool(self, rng: random.Random, size: int, residential_share: float) -> tuple[str, ...]:
        """A campaign's rotating pool: a random slice of the providers' exits (so campaigns overlap a little)."""
        n_res = round(size * residential_share)
        pool = rng.sample(self.residential_proxies, min(n_res, len(self.residential_proxies)))
        pool += rng.sample(self.datacenter_proxies, min(size - n_res, len(self.datacenter_proxies)))
        return tuple(pool)

    def pick(self, rng: random.Random, pool: Sequence[str]) -> str:
        return pool[rng.randrange(len(pool))]


# ---------------------------------------------------------------------------------------------- user agents
# Versions spread over two years of SDK releases: old pinned versions stay in production for a long time.
_PY_SDK = ("1.3.7", "1.12.0", "1.35.10", "1.54.3", "1.68.2", "1.93.0", "2.8.1", "2.30.0", "3.12.0", "3.41.2", "3.57.0")
_JS_SDK = ("4.28.0", "4.52.7", "4.77.0", "5.10.1", "5.23.2", "6.4.0", "6.15.3")
_SCRIPT = (
    "python-requests/2.28.1",
    "python-requests/2.31.0",
    "python-requests/2.32.3",
    "curl/7.81.0",
    "curl/8.5.0",
    "curl/8.11.1",
    "python-httpx/0.27.0",
    "python-httpx/0.28.1",
    "Python/3.11 aiohttp/3.9.5",
    "Go-http-client/2.0",
    "axios/1.7.7",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
)
_BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)

# Named mixes per kind of client; the weights overlap on purpose (everyone uses the Python SDK).
UA_MIXES: dict[str, dict[str, float]] = {
    "app": {"py": 0.55, "js": 0.3, "script": 0.1, "browser": 0.05},
    "chat": {"py": 0.25, "js": 0.35, "script": 0.05, "browser": 0.35},
    "dev": {"py": 0.5, "js": 0.2, "script": 0.3},
    "eval": {"py": 0.75, "script": 0.25},
    "harvest": {"py": 0.6, "script": 0.35, "js": 0.05},
}


def _recent(rng: random.Random, versions: Sequence[str]) -> str:
    """Newer versions are likelier: an index from a triangular distribution leaning to the end."""
    return versions[min(len(versions) - 1, int(rng.triangular(0, len(versions), len(versions))))]


def user_agent(rng: random.Random, mix: str) -> str:
    weights = UA_MIXES[mix]
    family = rng.choices(list(weights), weights=list(weights.values()))[0]
    if family == "py":
        return f"OpenAI/Python {_recent(rng, _PY_SDK)}"
    if family == "js":
        return f"OpenAI/JS {_recent(rng, _JS_SDK)}"
    if family == "script":
        return _SCRIPT[rng.randrange(len(_SCRIPT))]
    return _BROWSER[rng.randrange(len(_BROWSER))]
