"""What an ebMS error signal means for the hub: try again, give up, or a refusal of the document.

The AS4 profile says what failed, not what to do about it; the hub decides by the error's code (ebMS3 Core §6.7,
AS4 profile §3.6):

* **try again** (:class:`~hub.errors.TransientDeliveryError`): the counterpart could not take the message now —
  EBMS:0005 ConnectionFailure, EBMS:0201 DysfunctionalReliability, EBMS:0202 DeliveryFailure (its back end is down),
  EBMS:0301 MissingReceipt, and any error of severity ``warning`` on a user message we pushed (nothing was refused);
* **a refusal of the document** (:attr:`~hub.connector.Outcome.REJECTED`, which becomes a non-conformity): the
  message was read and its content refused — EBMS:0001 ValueNotRecognized, EBMS:0003 ValueInconsistent, EBMS:0004
  Other (what back ends such as Domibus' plug-ins answer when the business document is refused);
* **give up** (:class:`~hub.errors.PermanentDeliveryError`, the dead letters and an alert): the two access points
  disagree on the P-Mode, the packaging or the security (EBMS:0002, 0007–0011, 0101–0103, 0303, 0302): sending the
  same bytes again cannot succeed until someone changes a configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

from connectors.as4.ebms import Error
from connectors.as4.errors import EbmsError


class Disposition(str, Enum):
    """What the hub does with a user message an error signal answered."""

    RETRY = "retry"
    REJECTED = "rejected"
    GIVE_UP = "give_up"


_RETRY = {EbmsError.CONNECTION_FAILURE, EbmsError.DYSFUNCTIONAL_RELIABILITY, EbmsError.DELIVERY_FAILURE,
          EbmsError.MISSING_RECEIPT, EbmsError.EMPTY_MPC}
_REJECTED = {EbmsError.VALUE_NOT_RECOGNIZED, EbmsError.VALUE_INCONSISTENT, EbmsError.OTHER}


def disposition(errors: Sequence[Error]) -> Disposition:
    """What to do with a user message answered by ``errors``: the gravest of them decides (give up over rejected
    over retry); an unknown code is a disagreement nobody can fix by retrying (give up); warnings alone, retry."""
    failures = [error for error in errors if (error.severity or "failure").lower() != "warning"]
    if not failures:
        return Disposition.RETRY
    verdicts = set()
    for error in failures:
        known = error.ebms_error
        if known in _RETRY:
            verdicts.add(Disposition.RETRY)
        elif known in _REJECTED:
            verdicts.add(Disposition.REJECTED)
        else:
            verdicts.add(Disposition.GIVE_UP)
    for gravest in (Disposition.GIVE_UP, Disposition.REJECTED):
        if gravest in verdicts:
            return gravest
    return Disposition.RETRY


def summary(errors: Sequence[Error]) -> str:
    """The errors in one line for a trace or a dead letter: ``EBMS:0004 Other: the certificate is refused; …``."""
    return "; ".join(_one(error) for error in errors)


def _one(error: Error) -> str:
    named = f"{error.error_code} {error.short_description}" if error.short_description else error.error_code
    text = error.detail or error.description
    return f"{named}: {text}" if text else named
