"""A circuit breaker over one webhook subscriber's consecutive failures.

Closed, the subscriber's failures wait the retry strategy's backoff. After ``threshold`` consecutive failures the
circuit opens: nothing is sent for at least ``cooldown`` seconds (longer if the backoff already says so), and no
dispatcher thread spends time on the subscriber. Once the cool-down is over the circuit is half-open: the next
event is the trial; accepted, the circuit closes (the count starts again), refused, it opens again.

The state lives in the subscription's own columns (its consecutive ``failures`` and ``next_attempt_at``), so every
dispatcher of every worker process sees the same circuit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Circuit(str, Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True)
class CircuitBreaker:
    """When a subscriber's circuit opens (``threshold`` consecutive failures) and for how long (``cooldown``)."""

    threshold: int = 5
    cooldown: float = 120.0

    def is_open_after(self, failures: int) -> bool:
        """Whether ``failures`` consecutive failures open (or keep open) the circuit."""
        return failures >= self.threshold

    def wait_after(self, failures: int, backoff: float) -> float:
        """Seconds before the next attempt after the ``failures``-th consecutive failure: the backoff while the
        circuit is closed, at least the cool-down once it is open."""
        return max(backoff, self.cooldown) if self.is_open_after(failures) else backoff

    def state(self, failures: int, *, due: bool) -> Circuit:
        """The circuit of a subscriber with ``failures`` consecutive failures, ``due`` when its wait is over."""
        if not self.is_open_after(failures):
            return Circuit.CLOSED
        return Circuit.HALF_OPEN if due else Circuit.OPEN
