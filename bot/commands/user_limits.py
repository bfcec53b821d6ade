"""Per-user command rate limit: a sliding one-minute window per (adapter, user).

In-process on purpose: a user's commands reach the one process that polls their
platform, and a restart forgetting a minute of history is harmless.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class UserRateLimiter:
    def __init__(self, per_minute: int, *, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_users: int = 100_000):
        self.per_minute = per_minute
        self.window = window
        self.clock = clock
        self.max_users = max_users
        self._hits: dict[tuple[str, str], deque[float]] = {}
        self._warned: set[tuple[str, str]] = set()

    def allow(self, adapter: str, user_id: str) -> bool:
        """Record one command; False when the user already used up this window."""
        now = self.clock()
        key = (adapter, user_id)
        q = self._hits.get(key)
        if q is None:
            if len(self._hits) >= self.max_users:
                self._evict(now)
            q = self._hits[key] = deque()
        while q and q[0] <= now - self.window:
            q.popleft()
        if len(q) >= self.per_minute:
            return False
        q.append(now)
        self._warned.discard(key)
        return True

    def first_refusal(self, adapter: str, user_id: str) -> bool:
        """True the first time a refused user is told so in a window (later refusals stay silent)."""
        key = (adapter, user_id)
        if key in self._warned:
            return False
        self._warned.add(key)
        return True

    def retry_in(self, adapter: str, user_id: str) -> float:
        q = self._hits.get((adapter, user_id))
        if not q:
            return 0.0
        return max(0.0, q[0] + self.window - self.clock())

    def _evict(self, now: float) -> None:
        # Memory stays bounded under a flood of distinct ids: drop idle users first.
        for k in [k for k, q in self._hits.items() if not q or q[-1] <= now - self.window]:
            del self._hits[k]
            self._warned.discard(k)
        while len(self._hits) >= self.max_users:
            k = next(iter(self._hits))
            del self._hits[k]
            self._warned.discard(k)
