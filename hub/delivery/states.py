"""Transport states of a message (one document to one destination) and the transitions allowed between them.

::

    QUEUED ──► SENDING ──► AWAITING_ACK ──► ACKNOWLEDGED | ACKNOWLEDGED_WITH_WARNINGS | REJECTED
                 │  ▲  └─► ACKNOWLEDGED | ACKNOWLEDGED_WITH_WARNINGS | REJECTED   (a synchronous answer)
                 │  └── RETRY_WAIT ◄─┤   (transient error, or a lease that expired: the message goes again)
                 └──► DEAD_LETTER ◄──┘   (permanent error, or retries exhausted)
    DEAD_LETTER, REJECTED ──► QUEUED     (resend, same message identity)

A certificate's lifecycle (issued, replaced, withdrawn…) is a separate model: see :mod:`hub.records.status`.
"""

from __future__ import annotations

from enum import Enum

from hub.errors import HubError


class MessageState(str, Enum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRY_WAIT = "retry_wait"
    AWAITING_ACK = "awaiting_ack"
    ACKNOWLEDGED = "acknowledged"
    ACKNOWLEDGED_WITH_WARNINGS = "acknowledged_with_warnings"
    REJECTED = "rejected"
    DEAD_LETTER = "dead_letter"


S = MessageState
_ANSWERS = {S.ACKNOWLEDGED, S.ACKNOWLEDGED_WITH_WARNINGS, S.REJECTED}

ALLOWED_TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    S.QUEUED: frozenset({S.SENDING}),
    S.SENDING: frozenset({S.AWAITING_ACK, S.RETRY_WAIT, S.DEAD_LETTER, S.SENDING} | _ANSWERS),
    S.RETRY_WAIT: frozenset({S.SENDING, S.DEAD_LETTER}),
    S.AWAITING_ACK: frozenset(_ANSWERS | {S.DEAD_LETTER}),
    # A business response (an importing country's rejection) may follow an acknowledgement.
    S.ACKNOWLEDGED: frozenset({S.REJECTED}),
    S.ACKNOWLEDGED_WITH_WARNINGS: frozenset({S.REJECTED}),
    S.REJECTED: frozenset({S.QUEUED}),
    S.DEAD_LETTER: frozenset({S.QUEUED}),
}

#: States in which the counterpart has the message: a later message that depends on it may go.
DELIVERED_STATES = frozenset({S.AWAITING_ACK} | _ANSWERS)
#: States a worker may claim (SENDING only once its lease has expired).
CLAIMABLE_STATES = frozenset({S.QUEUED, S.RETRY_WAIT, S.SENDING})
#: States from which nothing more happens without an operator.
FINAL_STATES = frozenset(_ANSWERS | {S.DEAD_LETTER})


class InvalidTransition(HubError):
    """A state change the model does not allow (a programming error or a stale update)."""


def check_transition(old: MessageState | str, new: MessageState | str) -> MessageState:
    """Return ``new`` as a state if ``old → new`` is allowed, else raise :class:`InvalidTransition`."""
    old, new = MessageState(old), MessageState(new)
    if new not in ALLOWED_TRANSITIONS[old]:
        raise InvalidTransition(f"a message cannot go from {old.value} to {new.value}")
    return new
