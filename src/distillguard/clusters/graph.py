"""The weighted account graph and its communities: blocking, pair tests, Leiden.

Never all pairs: accounts are put in *blocks* by keys they share (an address, a /24, a payment card, a system
prompt, a dominant template, a sign-up hour, the hour they first used a new model), and by MinHash LSH over their
sets of repeated templates (``datasketch``): accounts whose template sets are near-duplicates (Jaccard around
``TEMPLATE_LSH_THRESHOLD`` or more) share an LSH bucket even when no single template is common to all. Pairs are
tested only within a block, all of them in a small block and a sparse sample in a large one: each member against
its ``RING_NEIGHBOURS`` successors in a seeded random order, which keeps a block connected with about
``RING_NEIGHBOURS`` links per member
(a campaign of 20,000 accounts sharing a template costs 20,000 x 8 tests, not 200 million). Every candidate pair
gets all the evidence tests; admissible links become weighted edges, and Leiden (``leidenalg``, modularity) finds
the communities. Cost grows with the number of accounts times the keys each has, not with its square.
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

import igraph as ig
import leidenalg
from datasketch import MinHash, MinHashLSH

from distillguard.clusters.evidence import SIGNUP_WINDOW_US, Context, Link, link
from distillguard.clusters.profile import AccountProfile

FULL_BLOCK = 24
RING_NEIGHBOURS = 8
MIN_MEMBERS = 3
# Keys per account used for blocking (the pair tests then look at everything the profiles hold).
BLOCK_IPS = 8
BLOCK_PREFIXES = 4
BLOCK_TEMPLATES = 4
HOUR_US = 3_600_000_000
TEMPLATE_LSH_THRESHOLD = 0.5
TEMPLATE_LSH_PERMUTATIONS = 64
TEMPLATE_SET = 8


def block_keys(p: AccountProfile, ctx: Context) -> Iterator[str]:
    for ip, _ in p.ips.most_common(BLOCK_IPS):
        yield "ip:" + ip
    for prefix, _ in p.prefixes.most_common(BLOCK_PREFIXES):
        yield "p:" + prefix
    if p.payment_fingerprint is not None:
        yield "pay:" + p.payment_fingerprint
    for system in p.system_prompts:
        yield "s:" + system
    for template, count in p.templates.most_common(BLOCK_TEMPLATES):
        if count >= 2:
            yield "t:" + template
    for key, count in p.recipes.most_common(2):
        if count >= 2:
            yield "r:" + key
    if p.created_us is not None:
        # Two overlapping windows, so that accounts created close together always share one.
        yield f"su:{p.created_us // SIGNUP_WINDOW_US}"
        yield f"su+:{(p.created_us + SIGNUP_WINDOW_US // 2) // SIGNUP_WINDOW_US}"
    for model, ts in p.model_first.items():
        if model in ctx.new_models:
            yield f"pv:{model}:{ts // HOUR_US}"


def template_lsh_blocks(profiles: list[AccountProfile]) -> Iterator[list[int]]:
    """Buckets of accounts whose sets of repeated templates are near-duplicates (MinHash LSH)."""
    indices, sets = [], []
    for i, p in enumerate(profiles):
        repeated = [t.encode() for t, n in p.templates.most_common(TEMPLATE_SET) if n >= 2]
        if len(repeated) >= 2:
            indices.append(i)
            sets.append(repeated)
    if len(indices) < 2:
        return
    lsh = MinHashLSH(threshold=TEMPLATE_LSH_THRESHOLD, num_perm=TEMPLATE_LSH_PERMUTATIONS)
    with lsh.insertion_session() as session:
        for i, minhash in zip(indices, MinHash.bulk(sets, num_perm=TEMPLATE_LSH_PERMUTATIONS), strict=True):
            session.insert(i, minhash, check_duplication=False)
    for table in lsh.hashtables:
        for bucket in table.keys():  # noqa: SIM118 - a datasketch storage, not a dict
            members = table.get(bucket)
            if len(members) >= 2:
                yield sorted(members)


def candidate_pairs(profiles: list[AccountProfile], ctx: Context) -> set[tuple[int, int]]:
    blocks: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(profiles):
        for key in block_keys(p, ctx):
            blocks[key].append(i)
    for n, members in enumerate(template_lsh_blocks(profiles)):
        blocks[f"lsh:{n}"] = members
    pairs: set[tuple[int, int]] = set()
    for key, members in blocks.items():
        n = len(members)
        if n < 2:
            continue
        if n <= FULL_BLOCK:
            pairs.update((members[x], members[y]) for x in range(n) for y in range(x + 1, n))
            continue
        order = members[:]
        random.Random(zlib.crc32(key.encode("utf-8", "surrogatepass"))).shuffle(order)
        for x in range(n):
            for step in range(1, RING_NEIGHBOURS + 1):
                a, b = order[x], order[(x + step) % n]
                pairs.add((a, b) if a < b else (b, a))
    return pairs


@dataclass
class Community:
    members: list[int]
    links: list[Link]
    # Sum of the admissible link weights from each member to the others: how firmly it belongs.
    strength: dict[int, float]


def communities(profiles: list[AccountProfile], seed: int = 0) -> tuple[list[Community], int]:
    """Communities of at least MIN_MEMBERS linked accounts, and the number of pairs tested."""
    ctx = Context(profiles)
    pairs = candidate_pairs(profiles, ctx)
    links = []
    for i, j in sorted(pairs):
        candidate = link(i, j, profiles[i], profiles[j], ctx)
        if candidate.admissible:
            links.append(candidate)
    if not links:
        return [], len(pairs)
    graph = ig.Graph(n=len(profiles), edges=[(lk.a, lk.b) for lk in links])
    graph.es["weight"] = [lk.weight for lk in links]
    partition = leidenalg.find_partition(graph, leidenalg.ModularityVertexPartition, weights="weight", seed=seed)
    membership: list[int] = partition.membership
    grouped: dict[int, list[Link]] = defaultdict(list)
    for lk in links:
        if membership[lk.a] == membership[lk.b]:
            grouped[membership[lk.a]].append(lk)
    out = []
    for group_links in grouped.values():
        strength: dict[int, float] = defaultdict(float)
        for lk in group_links:
            strength[lk.a] += lk.weight
            strength[lk.b] += lk.weight
        if len(strength) >= MIN_MEMBERS:
            out.append(Community(sorted(strength), group_links, dict(strength)))
    return out, len(pairs)
