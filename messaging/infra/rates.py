"""Token buckets: how fast a client or a student may act. Plumbing, imported by the permission
checks and by the API adapters; it imports nothing of the app."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

# Buckets kept in memory; the least recently used go first (a forgotten bucket is a full one).
MAX_BUCKETS = 10_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """One token bucket per key, in this process: `take` spends a token or says how long to wait.

    Several server processes each keep their own buckets, so the limit is per process: simple,
    and enough to keep one runaway script from flooding a classroom's room.
    """

    def __init__(self, max_keys: int = MAX_BUCKETS) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[tuple, _Bucket] = OrderedDict()
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
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(tokens=burst, updated=now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            if cost > burst or rate <= 0:
                return math.inf
            return (cost - bucket.tokens) / rate

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


buckets = TokenBuckets()


def client_ip(request) -> str:
    # REMOTE_ADDR as the server saw it: behind a proxy, run Daphne with --proxy-headers.
    return request.META.get("REMOTE_ADDR", "") or "unknown"
