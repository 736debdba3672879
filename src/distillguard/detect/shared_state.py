"""Per-account online state and the verdict cache in Redis, shared by every gateway replica (and ingest worker).

One Redis hash per account, ``{prefix}:acct:{account_id}``:

- ``v``: version, raised by one on every write;
- ``s``, ``c``: the encoded state (detect/state_codec.py: JSON part and packed part; bounded by the state's caps,
  under ~110 KB, typically 1 to 5 KB);
- ``score``: the newest score (risk, verdict, reasons), which is the shared verdict cache;
- ``w``: the tokens of the last 8 rounds that wrote it (tells a replica whether a write whose reply it lost
  landed, even if other replicas wrote after it).

Writes are compare-and-set in one Lua script (the version read must still be there), so two replicas folding
calls into the same account never lose each other's: the loser reloads and folds again. Every write sets the
key's TTL, so an account idle for ``ttl_s`` leaves Redis. The model-release clock is one more hash
(the earliest time each model was seen) and a key (when the traffic began), updated with "keep the minimum"
in Lua, the models capped at :data:`~distillguard.detect.features.CLOCK_MODEL_CAP` models.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import redis

TOKENS_KEPT = 8

# KEYS[1]: the account's hash. ARGV: expected version ("" when absent), TTL s, state JSON, packed state,
# score JSON ("" keeps the stored one), round token. Returns the new version, or 0 if the version moved.
_SAVE = """
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '') ~= ARGV[1] then return 0 end
local nv = (tonumber(v) or 0) + 1
local w = string.sub(ARGV[6] .. ' ' .. (redis.call('HGET', KEYS[1], 'w') or ''), 1, TOKENS_LEN)
redis.call('HSET', KEYS[1], 'v', nv, 's', ARGV[3], 'c', ARGV[4], 'w', w)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'score', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return nv
""".replace("TOKENS_LEN", str(TOKENS_KEPT * 33))  # a token is 32 hex digits, and a space

# KEYS[1]: the clock's models (a hash), KEYS[2]: when the traffic began. ARGV[1]: the model cap; ARGV[2]: the
# earliest call time of this round; then pairs of model, earliest call. Keeps the minimum of each; returns the
# start, then each model's first-seen time (a model past the cap is not stored: its time is the call's).
_CLOCK = """
local cap = tonumber(ARGV[1])
local start = redis.call('GET', KEYS[2])
if (not start) or tonumber(start) > tonumber(ARGV[2]) then
  start = ARGV[2]
  redis.call('SET', KEYS[2], start)
end
local out = {start}
for i = 3, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur and tonumber(cur) <= tonumber(ARGV[i + 1]) then
    out[#out + 1] = cur
  else
    if cur or redis.call('HLEN', KEYS[1]) < cap then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    out[#out + 1] = ARGV[i + 1]
  end
end
return out
"""


@dataclass(slots=True)
class Stored:
    """What Redis holds for one account (all None when it holds nothing)."""

    version: bytes | None
    doc: bytes | None
    packed: bytes | None
    score: bytes | None
    token: bytes | None


@dataclass(slots=True)
class Write:
    account_id: str
    version: bytes | None  # the version the state was read at
    doc: bytes
    packed: bytes
    score: bytes | None  # None: keep the stored score
    token: str


class RedisAccountStates:
    """Load, compare-and-set and expire account states; the shared model clock. Synchronous (runs on a worker
    thread off the event loop); every call is one pipelined round trip and raises ``redis.RedisError``."""

    def __init__(self, client: redis.Redis, prefix: str, ttl_s: int, clock_cap: int) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.clock_cap = clock_cap
        # One hash tag, so both clock keys live in one Redis Cluster slot (the script touches both).
        self.clock_keys = [f"{{{prefix}:clock}}:models", f"{{{prefix}:clock}}:start"]
        self._save = client.register_script(_SAVE)
        self._clock = client.register_script(_CLOCK)

    def key(self, account_id: str) -> str:
        return f"{self.prefix}:acct:{account_id}"

    def load(
        self, accounts: Sequence[str], earliest: int | None, models: Mapping[str, int]
    ) -> tuple[list[Stored], tuple[int, dict[str, int]] | None]:
        """Each account's stored state, and (when ``earliest`` is given) the clock after folding in this round's
        earliest call and each model's earliest call: (traffic start, {model: first seen})."""
        pipe = self.client.pipeline(transaction=False)
        for account_id in accounts:
            pipe.hmget(self.key(account_id), ["v", "s", "c", "score", "w"])
        if earliest is not None:
            args: list[str | int] = [self.clock_cap, earliest]
            for model, ts in models.items():
                args += [model, ts]
            self._clock(keys=self.clock_keys, args=args, client=pipe)
        replies = pipe.execute()
        stored = [Stored(*reply) for reply in replies[: len(accounts)]]
        if earliest is None:
            return stored, None
        clock = [int(x) for x in replies[-1]]
        return stored, (clock[0], dict(zip(models, clock[1:], strict=True)))

    def save(self, writes: Iterable[Write]) -> list[bool]:
        """Compare-and-set each write; True where it landed, False where another writer moved the version."""
        pipe = self.client.pipeline(transaction=False)
        n = 0
        for w in writes:
            args: list[bytes | str | int] = [w.version or b"", self.ttl_s, w.doc, w.packed, w.score or b"", w.token]
            self._save(keys=[self.key(w.account_id)], args=args, client=pipe)
            n += 1
        if n == 0:
            return []
        return [bool(r) for r in pipe.execute()]
