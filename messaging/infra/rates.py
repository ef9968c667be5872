"""Token buckets: how fast a client or a student may act. Plumbing, imported by the permission
checks and by the API adapters; it imports nothing of the app.

`buckets.take(key, rate=, burst=, now=, cost=)` is the one interface. Where the buckets live is
chosen once, at start-up (messaging/apps.py): in this process's memory (tests, one process),
in Redis (`REDIS_URL`: every process and machine shares them) or in the database (a row per
key: every process on it shares them). A limit counted per process would let two processes
allow twice as much, so anything people see counted is shared.

Wall-clock time (`time.time()`) is the clock: it is the only one that processes share. A clock
that goes back refills nothing rather than taking tokens away.

`take` may wait on the network or the database: call it from synchronous code (`atake` from
async code).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async

logger = logging.getLogger(__name__)

# Buckets kept in memory; the least recently used go first (a forgotten bucket is a full one).
MAX_BUCKETS = 10_000
# A stored key's length at most (the database's column); longer ones end in their hash.
MAX_KEY_CHARS = 200
# The shared stores drop a bucket once it is full again (a full bucket and none are the same);
# the database does it at most this often per process.
PURGE_EVERY_S = 60.0
# A shared store that fails is skipped (requests allowed) for this long before it is tried
# again, so an outage costs no request more than one short timeout.
RETRY_STORE_AFTER_S = 5.0
REDIS_TIMEOUT_S = 0.5
REDIS_PREFIX = "loglab:rate:"


def retry_seconds(wait: float) -> int:
    """A wait as people and `Retry-After` say it: whole seconds, rounded up, at least 1."""
    if math.isinf(wait) or math.isnan(wait):
        return 1
    return max(1, math.ceil(wait - 1e-9))


def key_text(key: tuple | str) -> str:
    """A bucket's key as the shared stores keep it: readable, bounded, distinct."""
    text = key if isinstance(key, str) else "|".join(str(part) for part in key)
    if len(text) > MAX_KEY_CHARS:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        text = f"{text[: MAX_KEY_CHARS - len(digest) - 1]}#{digest}"
    return text


def refilled(tokens: float, updated: float, *, now: float, rate: float, burst: float) -> float:
    return min(burst, tokens + max(0.0, now - updated) * rate)


def shortfall_wait(tokens: float, *, rate: float, burst: float, cost: float) -> float:
    """Seconds until a bucket holding `tokens` has `cost` (0.0 if it has them already;
    infinite when it never will)."""
    if tokens >= cost:
        return 0.0
    if cost > burst or rate <= 0:
        return math.inf
    return (cost - tokens) / rate


class RateStore(Protocol):
    def take(
        self, key: tuple, *, rate: float, burst: float, now: float | None, cost: float
    ) -> float: ...

    def wait(self, key: tuple, *, rate: float, burst: float, now: float | None) -> float: ...

    def clear(self) -> None: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key, in this process: for tests and a single process."""

    def __init__(self, max_keys: int = MAX_BUCKETS) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[Any, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(
        self,
        key: tuple,
        *,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        """Spend `cost` tokens of `key`'s bucket; 0.0 when allowed, else seconds until there
        are enough (infinite when `cost` is more than the bucket ever holds)."""
        now = time.time() if now is None else now
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(tokens=burst, updated=now)
            bucket.tokens = refilled(bucket.tokens, bucket.updated, now=now, rate=rate, burst=burst)
            bucket.updated = max(now, bucket.updated)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            wait = shortfall_wait(bucket.tokens, rate=rate, burst=burst, cost=cost)
            if not wait:
                bucket.tokens -= cost
            return wait

    def wait(self, key: tuple, *, rate: float, burst: float, now: float | None = None) -> float:
        """Seconds until `key`'s bucket holds one token, spending nothing."""
        now = time.time() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = refilled(bucket.tokens, bucket.updated, now=now, rate=rate, burst=burst)
        return shortfall_wait(tokens, rate=rate, burst=burst, cost=1.0)

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


class _Outage:
    """Fail open, and say so once: a shared store that is down allows every request (a rate
    limit is a courtesy; a 500 is not), with one log line when it goes and one when it is back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down_since: float | None = None
        self.retry_at = 0.0
        self._lock = threading.Lock()

    def skipping(self) -> bool:
        return self.down_since is not None and time.monotonic() < self.retry_at

    def failed(self, error: BaseException) -> float:
        with self._lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                logger.warning(
                    "Rate limits: %s is unreachable (%s); allowing every request until it is back.",
                    self.name,
                    error,
                )
            self.retry_at = time.monotonic() + RETRY_STORE_AFTER_S
        return 0.0

    def worked(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is not None:
                logger.warning("Rate limits: %s is back; limits apply again.", self.name)
                self.down_since = None


# KEYS[1]: the bucket. ARGV: rate, burst, now, cost, spend (1 or 0). Answers the wait as a
# string (a Lua number would come back truncated to an integer), "inf" when it never comes.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local spend = ARGV[5] == "1"
local stored = redis.call("HMGET", KEYS[1], "tokens", "updated")
local tokens = tonumber(stored[1]) or burst
local updated = tonumber(stored[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
if updated > now then now = updated end
local wait = 0
if tokens >= cost then
  if spend then tokens = tokens - cost end
elseif cost > burst or rate <= 0 then
  wait = -1
else
  wait = (cost - tokens) / rate
end
if spend then
  redis.call("HSET", KEYS[1], "tokens", string.format("%.17g", tokens),
             "updated", string.format("%.17g", now))
  local full_in = 1
  if rate > 0 then full_in = (burst - tokens) / rate end
  redis.call("PEXPIRE", KEYS[1], math.ceil(full_in * 1000) + 1000)
end
if wait < 0 then return "inf" end
return string.format("%.17g", wait)
"""


class RedisBuckets:
    """The buckets in Redis: one hash per key, updated by one Lua script (atomic), expiring
    once full again."""

    def __init__(self, url: str, *, prefix: str = REDIS_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self.outage = _Outage("Redis")
        self._client = None
        self._script = None
        self._lock = threading.Lock()

    def _take_script(self):
        if self._script is None:
            with self._lock:
                if self._script is None:
                    import redis

                    self._client = redis.Redis.from_url(
                        self.url,
                        socket_timeout=REDIS_TIMEOUT_S,
                        socket_connect_timeout=REDIS_TIMEOUT_S,
                    )
                    self._script = self._client.register_script(_TAKE_LUA)
        return self._script

    def _run(
        self, key: tuple, *, rate: float, burst: float, now: float | None, cost: float, spend: bool
    ) -> float:
        import redis

        if self.outage.skipping():
            return 0.0
        now = time.time() if now is None else now
        try:
            answer = self._take_script()(
                keys=[self.prefix + key_text(key)],
                args=[
                    repr(float(rate)),
                    repr(float(burst)),
                    repr(float(now)),
                    repr(float(cost)),
                    "1" if spend else "0",
                ],
            )
        except redis.RedisError as error:
            return self.outage.failed(error)
        self.outage.worked()
        return float(answer)

    def take(
        self,
        key: tuple,
        *,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        return self._run(key, rate=rate, burst=burst, now=now, cost=cost, spend=True)

    def wait(self, key: tuple, *, rate: float, burst: float, now: float | None = None) -> float:
        return self._run(key, rate=rate, burst=burst, now=now, cost=1.0, spend=False)

    def clear(self) -> None:
        """Forget every bucket under this prefix (tests)."""
        import redis

        self._take_script()
        try:
            keys = list(self._client.scan_iter(match=self.prefix + "*", count=500))
            if keys:
                self._client.delete(*keys)
        except redis.RedisError as error:
            self.outage.failed(error)


class DatabaseBuckets:
    """The buckets in the database: a row per key (`model`, passed in: plumbing imports no
    model), spent by one conditional UPDATE, so two processes can never both spend the last
    token; rows full again are purged."""

    def __init__(self, model: Any, *, purge_every_s: float = PURGE_EVERY_S) -> None:
        self.model = model
        self.purge_every_s = purge_every_s
        self.outage = _Outage("the rate-limit table")
        self._purged_at = -math.inf

    def take(
        self,
        key: tuple,
        *,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        from django.db import DatabaseError, transaction
        from django.db.models import F, Value
        from django.db.models.functions import Greatest, Least
        from django.db.models.lookups import GreaterThanOrEqual

        if self.outage.skipping():
            return 0.0
        now = time.time() if now is None else now
        name = key_text(key)
        rate, burst, cost = float(rate), float(burst), float(cost)
        tokens = Least(
            Value(burst),
            F("tokens") + Greatest(Value(0.0), Value(now) - F("updated")) * Value(rate),
        )
        left = tokens - Value(cost)
        spend = {
            "tokens": left,
            "updated": Greatest(F("updated"), Value(now)),
            "full_at": Greatest(F("updated"), Value(now))
            + (Value(burst) - left) / Value(max(rate, 1e-9)),
        }
        found = None
        try:
            # Its own short transaction (views ask before opening theirs), or a savepoint
            # inside one: a failure rolls back only this.
            with transaction.atomic():
                rows = self.model.objects.filter(key=name)
                self._purge(now)
                for _ in range(2):
                    if rows.filter(GreaterThanOrEqual(tokens, Value(cost))).update(**spend):
                        self.outage.worked()
                        return 0.0
                    found = rows.values_list("tokens", "updated").first()
                    if found is not None:
                        break
                    # A new key: a full bucket, then spend from it as any other.
                    self.model.objects.bulk_create(
                        [self.model(key=name, tokens=burst, updated=now, full_at=now)],
                        ignore_conflicts=True,
                    )
        except DatabaseError as error:
            return self.outage.failed(error)
        self.outage.worked()
        if found is None:  # a cost more than the bucket ever holds, on a new key
            return shortfall_wait(burst, rate=rate, burst=burst, cost=cost)
        current = refilled(found[0], found[1], now=now, rate=rate, burst=burst)
        return shortfall_wait(current, rate=rate, burst=burst, cost=cost) or 1e-6

    def wait(self, key: tuple, *, rate: float, burst: float, now: float | None = None) -> float:
        from django.db import DatabaseError

        if self.outage.skipping():
            return 0.0
        now = time.time() if now is None else now
        try:
            found = self.model.objects.filter(key=key_text(key)).values_list("tokens", "updated")
            found = found.first()
        except DatabaseError as error:
            return self.outage.failed(error)
        if found is None:
            return 0.0
        current = refilled(found[0], found[1], now=now, rate=rate, burst=burst)
        return shortfall_wait(current, rate=rate, burst=burst, cost=1.0)

    def _purge(self, now: float) -> None:
        if now - self._purged_at < self.purge_every_s and now >= self._purged_at:
            return
        self._purged_at = now
        self.model.objects.filter(full_at__lt=now).delete()

    def clear(self) -> None:
        self.model.objects.all().delete()
        self._purged_at = -math.inf


class Buckets:
    """The process's buckets, wherever they are kept (`use` picks the store at start-up)."""

    def __init__(self, store: RateStore | None = None) -> None:
        self.store: RateStore = store or TokenBuckets()

    def use(self, store: RateStore) -> None:
        self.store = store

    def take(
        self,
        key: tuple,
        *,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        """Spend `cost` tokens of `key`'s bucket (which holds at most `burst` and refills at
        `rate` a second); 0.0 when allowed, else seconds until there are enough (infinite when
        `cost` is more than the bucket ever holds)."""
        return self.store.take(key, rate=rate, burst=burst, now=now, cost=cost)

    async def atake(
        self,
        key: tuple,
        *,
        rate: float,
        burst: float,
        now: float | None = None,
        cost: float = 1.0,
    ) -> float:
        return await sync_to_async(self.take)(key, rate=rate, burst=burst, now=now, cost=cost)

    def wait(self, key: tuple, *, rate: float, burst: float, now: float | None = None) -> float:
        """Seconds until `key`'s bucket holds a token, spending nothing (0.0: it has one)."""
        return self.store.wait(key, rate=rate, burst=burst, now=now)

    def clear(self) -> None:
        self.store.clear()


buckets = Buckets()

BACKENDS = ("auto", "memory", "redis", "database")


def store_for(*, backend: str, redis_url: str, model: Any) -> RateStore:
    """The store a setting names: `auto` is Redis when there is a `REDIS_URL`, else the
    database."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rate-limit backend {backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "auto":
        backend = "redis" if redis_url else "database"
    if backend == "redis":
        if not redis_url:
            raise ValueError("the redis rate-limit backend needs REDIS_URL")
        return RedisBuckets(redis_url)
    if backend == "database":
        return DatabaseBuckets(model)
    return TokenBuckets()


def client_ip(request) -> str:
    # REMOTE_ADDR as the server saw it: behind a proxy, run Daphne with --proxy-headers.
    return request.META.get("REMOTE_ADDR", "") or "unknown"
