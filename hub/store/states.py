"""Transport states of a message (one document to one destination) and the transitions allowed between them.

::

    QUEUED ──► SENDING ──► AWAITING_ACK ──► ACKNOWLEDGED | ACKNOWLEDGED_WITH_WARNINGS | REJECTED
                 │  ▲  └─► ACKNOWLEDGED | ACKNOWLEDGED_WITH_WARNINGS | REJECTED   (a synchronous answer)
                 │  └── RETRY_WAIT ◄─┤   (transient error, or a lease that expired: the message goes again)
                 └──► DEAD_LETTER ◄──┘   (permanent error, or retries exhausted)
    DEAD_LETTER, REJECTED ──► QUEUED     (resend, same message identity)
    RETRY_WAIT, DEAD_LETTER ──► AWAITING_ACK | answers   (the counterpart answers a message whose own receipt was
                                                        lost: what it says is applied whatever the hub was doing)
    DEAD_LETTER, AWAITING_ACK ──► ABANDONED   (an operator gives up, with a reason: terminal; a late answer is kept
                                               on the trace but moves nothing)

A certificate's lifecycle (issued, replaced, withdrawn…) is a separate model: see :mod:`hub.records.status`.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy.orm import Session

from hub.errors import ConflictError, InputError, InvalidTransition
from hub.store.models import Message, utcnow
from hub.store.trace import add_event


class MessageState(str, Enum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRY_WAIT = "retry_wait"
    AWAITING_ACK = "awaiting_ack"
    ACKNOWLEDGED = "acknowledged"
    ACKNOWLEDGED_WITH_WARNINGS = "acknowledged_with_warnings"
    REJECTED = "rejected"
    DEAD_LETTER = "dead_letter"
    ABANDONED = "abandoned"


S = MessageState
_ANSWERS = {S.ACKNOWLEDGED, S.ACKNOWLEDGED_WITH_WARNINGS, S.REJECTED}

ALLOWED_TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    S.QUEUED: frozenset({S.SENDING}),
    S.SENDING: frozenset({S.AWAITING_ACK, S.RETRY_WAIT, S.DEAD_LETTER, S.SENDING} | _ANSWERS),
    S.RETRY_WAIT: frozenset({S.SENDING, S.DEAD_LETTER, S.AWAITING_ACK} | _ANSWERS),
    S.AWAITING_ACK: frozenset(_ANSWERS | {S.DEAD_LETTER, S.ABANDONED}),
    # A business response (an importing country's rejection) may follow an acknowledgement.
    S.ACKNOWLEDGED: frozenset({S.REJECTED}),
    S.ACKNOWLEDGED_WITH_WARNINGS: frozenset({S.REJECTED}),
    S.REJECTED: frozenset({S.QUEUED}),
    S.DEAD_LETTER: frozenset({S.QUEUED, S.AWAITING_ACK, S.ABANDONED} | _ANSWERS),
    S.ABANDONED: frozenset(),
}
#: States an operator may abandon a message from: a dead letter, or a message whose answer never came.
ABANDONABLE_STATES = frozenset({S.DEAD_LETTER, S.AWAITING_ACK})
#: The longest reason an operator gives for abandoning a message.
MAX_REASON = 500

#: States in which the counterpart has the message: a later message that depends on it may go.
DELIVERED_STATES = frozenset({S.AWAITING_ACK} | _ANSWERS)
#: States of a predecessor that let the message following it go: delivered, or given up by an operator (the
#: replacement then carries the certificate alone).
RELEASING_STATES = DELIVERED_STATES | {S.ABANDONED}
#: States a worker may claim (SENDING only once its lease has expired).
CLAIMABLE_STATES = frozenset({S.QUEUED, S.RETRY_WAIT, S.SENDING})
#: States from which nothing more happens without an operator.
FINAL_STATES = frozenset(_ANSWERS | {S.DEAD_LETTER, S.ABANDONED})


def check_transition(old: MessageState | str, new: MessageState | str) -> MessageState:
    """Return ``new`` as a state if ``old → new`` is allowed, else raise :class:`InvalidTransition`."""
    old, new = MessageState(old), MessageState(new)
    if new not in ALLOWED_TRANSITIONS[old]:
        raise InvalidTransition(f"a message cannot go from {old.value} to {new.value}")
    return new


def transition(
    session: Session,
    message: Message,
    new_state: MessageState,
    *,
    actor: str,
    event: str | None = None,
    detail: dict | None = None,
    payload_digest: str | None = None,
    now: datetime | None = None,
) -> None:
    """Move ``message`` to ``new_state`` (checked against the allowed transitions) and trace it."""
    now = now or utcnow()
    check_transition(message.state, new_state)
    message.state = new_state.value
    message.updated_at = now
    if new_state in DELIVERED_STATES and message.delivered_at is None:
        message.delivered_at = now
    if new_state in (S.ACKNOWLEDGED, S.ACKNOWLEDGED_WITH_WARNINGS, S.REJECTED):
        message.acknowledged_at = message.acknowledged_at or now
    if new_state is not S.SENDING:
        message.lease_owner = None
        message.lease_expires_at = None
    document = message.document
    add_event(session, document=document, message_id=message.id, destination=message.destination, event=event or f"message.{new_state.value}", actor=actor, state=new_state.value, detail=detail, payload_digest=payload_digest)


def abandon(session: Session, message: Message, *, actor: str, reason: str, now: datetime | None = None) -> None:
    """Give ``message`` up for good (a dead letter, or an answer that never came): it becomes ``abandoned`` and the
    trace keeps who did it and why. :class:`ConflictError` from another state, :class:`InputError` without a
    reason."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InputError(f"say why the message is abandoned, in 1 to {MAX_REASON} characters", where="reason")
    if MessageState(message.state) not in ABANDONABLE_STATES:
        raise ConflictError(f"message {message.id} is {message.state}; only a dead letter or a message awaiting its answer can be abandoned", where="state")
    transition(session, message, S.ABANDONED, actor=actor, event="message.abandoned", detail={"reason": reason, "from": message.state}, now=now)
