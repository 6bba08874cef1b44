"""hub.jsonsafe.too_deep judges nesting in C (strings taken out by a regular expression, brackets summed): it must
answer exactly as a byte-by-byte walk of the JSON grammar's strings and brackets does, on any bytes — escapes,
strings left open, a backslash at the very end, brackets inside strings, closers before openers."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import InputError
from hub.jsonsafe import MAX_JSON_DEPTH, loads, too_deep


def walked(data: bytes, limit: int) -> bool:
    """The reference: a byte-by-byte walk (what the hub did before), strings and escapes understood."""
    depth, in_string, escaped = 0, False, False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


# Mostly the bytes that matter, so that strings, escapes and brackets meet in every order.
TOKENS = st.lists(st.sampled_from([b'"', b"\\", b"[", b"]", b"{", b"}", b"a", b",", b":", b"\n", "é".encode()]), max_size=300).map(b"".join)


@settings(max_examples=600, deadline=None, derandomize=True, database=None)
@given(TOKENS, st.integers(min_value=0, max_value=8))
def test_too_deep_answers_as_the_byte_by_byte_walk(data, limit):
    assert too_deep(data, limit) == walked(data, limit)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=30))
def test_real_json_is_judged_by_its_real_depth(value):
    body = json.dumps(value).encode()
    assert too_deep(body, 3) == walked(body, 3)
    assert too_deep(body.decode(), 3) == walked(body, 3)


def test_the_edges_of_the_limit_and_of_strings():
    assert not too_deep(b"[" * MAX_JSON_DEPTH) and too_deep(b"[" * (MAX_JSON_DEPTH + 1))
    assert not too_deep(b'"' + b"[" * 100)  # a string left open: nothing after it is structure
    assert not too_deep(b'"\\"' + b"[" * 100)  # an escaped quote does not close it
    assert too_deep(b'"\\\\"' + b"[" * 100)  # an escaped backslash does
    assert not too_deep(b'"abc\\')  # a backslash at the very end
    assert not too_deep(b"]" * 100 + b"[" * 100)  # closers first bring the depth below zero


def test_loads_refuses_a_deep_body_before_parsing_it():
    body = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(InputError, match="nests deeper than 64") as refused:
        loads(body, source="body")
    assert refused.value.where == "body"
