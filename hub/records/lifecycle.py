"""The lifecycle a document goes through in the hub, one model for every kind (SPS certificates, CHEDs, CITES
permits), kept apart from the status a document carries (:mod:`hub.records.status`) and from message states.

::

    issued ──► completed ──► used
      │  │         │   └───► expired ──► cancellation_requested ──► cancelled
      │  │         └───────────────────► cancellation_requested
      │  └──► used / expired / cancellation_requested
      └──► replaced / withdrawn

``completed`` is a CITES re-export certificate issued under the simplified procedure whose blank boxes were reported
at the sale; ``used`` means customs wrote off everything it allowed; ``cancelled`` a permit whose original sheets came
back. Every change is checked against :data:`ALLOWED` by :func:`move`.
"""

from __future__ import annotations

from enum import Enum

from hub.errors import ConflictError


class Lifecycle(str, Enum):
    ISSUED = "issued"
    COMPLETED = "completed"
    USED = "used"
    EXPIRED = "expired"
    CANCELLATION_REQUESTED = "cancellation_requested"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    WITHDRAWN = "withdrawn"


L = Lifecycle
ALLOWED: dict[Lifecycle, frozenset[Lifecycle]] = {
    L.ISSUED: frozenset({L.COMPLETED, L.USED, L.EXPIRED, L.CANCELLATION_REQUESTED, L.REPLACED, L.WITHDRAWN}),
    L.COMPLETED: frozenset({L.USED, L.EXPIRED, L.CANCELLATION_REQUESTED, L.REPLACED, L.WITHDRAWN}),
    L.EXPIRED: frozenset({L.CANCELLATION_REQUESTED}),
    L.CANCELLATION_REQUESTED: frozenset({L.CANCELLED}),
    L.USED: frozenset(),
    L.CANCELLED: frozenset(),
    # A replaced certificate may still be withdrawn by its issuer, and the reverse.
    L.REPLACED: frozenset({L.WITHDRAWN}),
    L.WITHDRAWN: frozenset({L.REPLACED}),
}

#: Lifecycles in which a document can no longer be presented (to customs, at a border).
CLOSED = frozenset({L.USED, L.EXPIRED, L.CANCELLATION_REQUESTED, L.CANCELLED, L.REPLACED, L.WITHDRAWN})


def move(current: Lifecycle | str, target: Lifecycle | str) -> Lifecycle:
    """``target`` as a :class:`Lifecycle` if the document may go there from ``current``; a
    :class:`~hub.errors.ConflictError` naming both otherwise (staying where it is is allowed)."""
    current, target = Lifecycle(current), Lifecycle(target)
    if target is not current and target not in ALLOWED[current]:
        raise ConflictError(f"a document that is {current.value} cannot become {target.value}", where="lifecycle")
    return target
