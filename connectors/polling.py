"""Polling several sources of answers (endpoints, countries) so that one failing source loses nothing."""

from __future__ import annotations

import logging
from typing import Callable, Iterable, TypeVar

from hub.errors import DeliveryError

log = logging.getLogger(__name__)
Source = TypeVar("Source")
Report = TypeVar("Report")


def poll_each(name: str, sources: Iterable[Source], poll: Callable[[Source], Iterable[Report]], *, what: str) -> list[Report]:
    """What ``poll`` returns for every source, in order. A source that fails is logged and skipped; its
    :class:`~hub.errors.DeliveryError` is raised only when no source gave anything, so that reports already read
    (and taken off the counterpart) are never dropped with an error."""
    reports: list[Report] = []
    failure: DeliveryError | None = None
    for source in sources:
        try:
            reports.extend(poll(source))
        except DeliveryError as exc:
            log.warning("%s: %s %s failed: %s", name, what, source, exc)
            failure = failure or exc
    if failure is not None and not reports:
        raise failure
    return reports
