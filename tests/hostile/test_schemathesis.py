"""The API fuzzed from its own OpenAPI with schemathesis: every operation, a bounded number of generated requests
each (derandomized, so CI sees the same ones), as France's system. No answer may be a 5xx, and each must conform to
the response schema the operation declares. The event stream is left out (it streams until the client leaves)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, reject, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES = 4


def test_no_operation_answers_a_5xx_or_breaks_its_schema(kit):
    schema = schemathesis.openapi.from_asgi("/openapi.json", kit.api.app).exclude(path="/v1/events")
    headers = {"Authorization": kit.api.headers["Authorization"]}
    tried, failures = [], {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            try:
                case.call_and_validate(headers=headers, checks=[not_a_server_error, response_schema_conformance])
            except UnicodeEncodeError:
                reject()  # a header value HTTP cannot carry: the client cannot even send it

        tried.append(operation.label)
        try:
            fuzz()
        except Exception as exc:  # every failing operation is reported, not only the first
            failures[operation.label] = "; ".join(str(e)[:600] for e in getattr(exc, "exceptions", None) or [exc])
    assert len(tried) >= 25, tried
    assert not failures, "\n\n".join(f"{label}: {failure}" for label, failure in failures.items())
