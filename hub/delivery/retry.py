"""When to try a message again: exponential backoff with jitter, honouring the counterpart's ``Retry-After``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryStrategy:
    """``delay(n)`` after the n-th failed attempt is ``base × factor^(n-1)``, capped at ``max_delay``, spread by
    ±``jitter`` (a fraction) so that many messages failing together do not return together. A counterpart's
    ``retry_after`` is a floor: the hub never comes back sooner than it was asked to."""

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.2
    random: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        backoff = min(self.max_delay, self.base * self.factor ** max(0, attempt - 1))
        backoff *= 1 + self.random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            return max(backoff, retry_after)
        return backoff

    def exhausted(self, attempt: int, max_attempts: int) -> bool:
        """True when ``attempt`` was the last one allowed."""
        return attempt >= max_attempts
