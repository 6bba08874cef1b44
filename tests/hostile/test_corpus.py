"""Every case of the hostile corpus (cases.py) against the whole API: the refusal it must get, nothing stored half-way,
nothing fetched from the network, and the hub still up afterwards. On SQLite, and on PostgreSQL for the families
decided in the store (``STORE_FAMILIES``)."""

from __future__ import annotations

import pytest

from tests.hostile.cases import CASES, STORE_FAMILIES, Case, params
from tests.hostile.kit import Kit, as_json


@pytest.mark.parametrize("case", params(CASES))
def test_a_hostile_request_is_refused_cleanly(kit, case: Case):
    refused_cleanly(kit, case)


@pytest.mark.parametrize("kit", ["postgresql"], indirect=True)
@pytest.mark.parametrize("case", params([case for case in CASES if case.family in STORE_FAMILIES]))
def test_a_hostile_request_is_refused_cleanly_on_postgresql(kit, case: Case):
    refused_cleanly(kit, case)


def refused_cleanly(kit: Kit, case: Case) -> None:
    """Send ``case``; its refusal, nothing stored half-way, nothing fetched, the hub still up."""
    call = case.call(kit)
    before = kit.stored()
    answer = kit.send(call)

    assert answer.status_code == case.status, answer.text[:600]
    assert "Traceback" not in answer.text
    body = as_json(answer)
    if call.path == "/v1/verify" and case.status == 200:
        assert body["genuine"] is False, body
        told = body.get("reason", "")
    else:
        told = f"{body.get('message', '')} {body.get('where', '')} {body.get('problems', '')}"
    if case.error:
        assert body.get("error") == case.error, body
    if case.says:
        assert case.says.lower() in told.lower(), body
    if case.where:
        assert body.get("where", "") == case.where or case.where in str(body.get("problems", "")), body
    after = kit.stored()
    assert after.pop("message states") == before.pop("message states"), "a message was moved"
    grown = {table: after[table] - count for table, count in before.items() if after[table] != count}
    assert all(table in case.keeps and rows == 1 for table, rows in grown.items()), f"stored half-way: {grown}"
    if "acknowledgements" in grown:
        assert kit.newest_acknowledgement().unmatched, "an answer was recorded as matched"
    assert kit.canary.hits == [], "the hub fetched a URL a payload named"
    kit.assert_still_up()


def test_the_corpus_is_large_and_each_case_named_once():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    assert len(CASES) >= 60
