"""The one lifecycle model: which moves are allowed, and what customs may no longer accept."""

from __future__ import annotations

import pytest

from hub.errors import ConflictError
from hub.records.lifecycle import ALLOWED, CLOSED, Lifecycle, move

L = Lifecycle


@pytest.mark.parametrize("path", [
    [L.ISSUED, L.USED],
    [L.ISSUED, L.COMPLETED, L.USED],
    [L.ISSUED, L.EXPIRED, L.CANCELLATION_REQUESTED, L.CANCELLED],
    [L.ISSUED, L.COMPLETED, L.CANCELLATION_REQUESTED, L.CANCELLED],
    [L.ISSUED, L.REPLACED, L.WITHDRAWN],
])
def test_the_lifecycles_of_the_issue_are_allowed(path):
    for current, target in zip(path, path[1:]):
        assert move(current, target) is target


@pytest.mark.parametrize("current, target", [(L.USED, L.ISSUED), (L.CANCELLED, L.ISSUED), (L.EXPIRED, L.USED), (L.ISSUED, L.CANCELLED), ("used", "expired")])
def test_other_moves_are_refused_naming_both_ends(current, target):
    with pytest.raises(ConflictError) as refused:
        move(current, target)
    assert Lifecycle(current).value in str(refused.value) and Lifecycle(target).value in str(refused.value)


def test_final_lifecycles_go_nowhere_and_only_issued_and_completed_stay_open():
    assert ALLOWED[L.USED] == ALLOWED[L.CANCELLED] == frozenset()
    assert set(Lifecycle) - CLOSED == {L.ISSUED, L.COMPLETED}
    assert move("issued", "issued") is L.ISSUED
