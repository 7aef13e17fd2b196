"""Uploaded JSON: what json.loads accepts but nothing after it can handle is refused, named."""

from __future__ import annotations

import pytest

from tzurot.gateway.uploaded_json import MAX_INT_DIGITS, MAX_JSON_DEPTH, load_uploaded_json
from tzurot.runtime.errors import InvalidArgument


def refused(data: bytes) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        load_uploaded_json(data, what="the card", reason="BAD_CARD")
    return caught.value


def test_a_plain_document_is_read_as_json_reads_it() -> None:
    data = b'\xef\xbb\xbf{"a": [1, 2.5, "\xc3\xa9", {"b": null}], "c d": true}'
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert load_uploaded_json(data, what="x", reason="R") == {
        "a": [1, 2.5, "é", {"b": None}],
        "c d": True,
    }
    assert load_uploaded_json(nested, what="x", reason="R") is not None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"data": {"description": "a\\u0000b"}}', "data.description"),
        (b'{"entries": {"0": {"key": ["x", "\\u0000"]}}}', 'entries["0"].key[1]'),
        (b'["ok", "\\u0000"]', "[1]"),
        (b'"\\u0000"', "document"),
    ],
)
def test_nul_in_a_string_is_refused_naming_its_path(data: bytes, field: str) -> None:
    error = refused(data)
    assert (error.reason, error.field) == ("NUL_CHARACTER", field)
    assert "NUL" in error.message
    assert "\x00" not in error.message + error.field


def test_nul_in_a_key_is_refused() -> None:
    error = refused(b'{"data": {"extensions": {"a\\u0000b": 1}}}')
    assert error.reason == "NUL_CHARACTER"
    assert error.field == "data.extensions.<field>"  # a key that is not a name is not quoted
    assert "field name" in error.message


def test_a_lone_surrogate_is_refused() -> None:
    error = refused(b'{"data": {"name": "x\\ud800"}}')
    assert (error.reason, error.field) == ("INVALID_TEXT", "data.name")


@pytest.mark.parametrize(
    "literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999", b"1.5e400"]
)
def test_non_finite_numbers_are_refused(literal: bytes) -> None:
    error = refused(b'{"data": {"x": [' + literal + b"]}}")
    assert error.reason == "INVALID_NUMBER"
    assert literal.decode() in error.message


def test_an_integer_too_long_to_convert_is_refused() -> None:
    assert refused(b'{"x": ' + b"1" * 5000 + b"}").reason == "INVALID_NUMBER"


def test_an_integer_is_as_long_as_a_double_holds() -> None:
    fits = b"-" + b"9" * MAX_INT_DIGITS
    assert load_uploaded_json(fits, what="x", reason="R") == -int(b"9" * MAX_INT_DIGITS)
    error = refused(b'{"x": [' + b"1" * (MAX_INT_DIGITS + 1) + b"]}")
    assert (error.reason, error.field) == ("INVALID_NUMBER", "document")
    assert f"more than {MAX_INT_DIGITS} digits" in error.message


def test_paths_start_at_the_root_and_stop_after_eight_steps() -> None:
    with pytest.raises(InvalidArgument) as caught:
        load_uploaded_json(
            b'[{"a": {"b c": [[[[[["\\u0000"]]]]]]}}]', what="x", reason="R", root="items"
        )
    assert caught.value.field == "items[0].a.<field>[0][0][0][0][0]…"


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5000])
def test_deep_nesting_is_refused(depth: int) -> None:
    error = refused(b'{"a": ' + b"[" * depth + b"]" * depth + b"}")
    assert error.reason == "NESTED_TOO_DEEP"


@pytest.mark.parametrize(
    ("data", "words"),
    [(b"\xff{}", "not UTF-8 text"), (b'{"a": }', "not valid JSON")],
)
def test_what_is_not_json_gets_the_callers_reason(data: bytes, words: str) -> None:
    error = refused(data)
    assert error.reason == "BAD_CARD"
    assert words in error.message
