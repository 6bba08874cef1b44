"""Attempts per client address, for what anyone may try without an account (checking a verification code, logging
into the console): a token bucket per address and purpose, in the process's memory."""

from __future__ import annotations

import ipaddress
import math
import threading
import time
import weakref
from collections import OrderedDict
from typing import Callable

from fastapi import Request


class RateLimiter:
    """A token bucket per client address: ``burst`` attempts at once, one more every ``60 / per_minute`` seconds.
    At most ``max_clients`` addresses are remembered (the least recently seen are forgotten first), so that a flood
    of addresses cannot exhaust memory."""

    def __init__(self, *, per_minute: float, burst: int | None = None, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address → (tokens, when counted)
        self._lock = threading.Lock()

    def attempt(self, address: str, *, spend: bool = True) -> int:
        """Spend one attempt of ``address`` (with ``spend=False`` only look): 0 when allowed, else the whole seconds
        to wait before the next."""
        with self._lock:
            now = self.clock()
            tokens, then = self._buckets.pop(address, (self.burst, now))
            tokens = min(self.burst, tokens + (now - then) * self.rate)
            allowed = tokens >= 1.0
            if allowed and spend:
                tokens -= 1.0
            self._buckets[address] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        return 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))


_LIMITERS: "weakref.WeakKeyDictionary[object, dict[str, RateLimiter]]" = weakref.WeakKeyDictionary()
_LIMITERS_LOCK = threading.Lock()


def limiter_of(owner: object, purpose: str, *, per_minute: float) -> RateLimiter:
    """The limiter of ``purpose`` in one hub (``owner``: its broker), made at the first attempt."""
    with _LIMITERS_LOCK:
        limiters = _LIMITERS.setdefault(owner, {})
        if purpose not in limiters:
            limiters[purpose] = RateLimiter(per_minute=per_minute)
        return limiters[purpose]


def client_key(address: str) -> str:
    """Whose attempts these are: an IPv4 address, or an IPv6 address's /64 (one subscriber's network: its holder has
    billions of addresses)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def attempt(request: Request, owner: object, purpose: str, *, per_minute: float, spend: bool = True) -> int:
    """Spend one attempt of the request's client for ``purpose`` (``spend=False``: only look whether one is left):
    0 when allowed, else the seconds to wait."""
    limiter = limiter_of(owner, purpose, per_minute=per_minute)
    return limiter.attempt(client_key(request.client.host if request.client else "unknown"), spend=spend)
