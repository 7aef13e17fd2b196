"""JSON documents users upload (character cards, lorebooks, shapes.inc exports), read safely.

An upload arrives as bytes, so the interceptor's check of proto strings never sees inside it.
`json.loads` accepts what later steps cannot handle: NaN and infinities (pydantic turns them
into null, `int()` raises), nesting that exhausts the stack (RecursionError), integers longer
than Python converts (ValueError), and strings Postgres cannot store in `text` or `jsonb` (NUL,
a lone surrogate from a `\\ud800` escape), which failed deep inside a statement as INTERNAL.
`load_uploaded_json` refuses all of them with an InvalidArgument naming the place.
"""

from __future__ import annotations

import json
import math
from typing import Any

from tzurot.runtime.errors import InvalidArgument

MAX_JSON_DEPTH = 100
"""How deeply arrays and objects may nest; real cards and lorebooks need fewer than 10."""
_KEY_CHARS = 40


class _NotFinite(ValueError):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(literal: str) -> Any:
    raise _NotFinite(literal)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _NotFinite(literal)
    return value


def load_uploaded_json(data: bytes, *, what: str, reason: str) -> Any:
    """The decoded document, or InvalidArgument: `what` names it in messages ("the
    lorebook"), `reason` is given when it is not JSON at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidArgument("document", f"{what} is not UTF-8 text", reason=reason) from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(
            "document",
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})",
            reason=reason,
        ) from None
    except _NotFinite as exc:
        raise InvalidArgument(
            "document",
            f"{what} holds the number {exc.literal[:_KEY_CHARS]}, which is not finite "
            "(JSON has no NaN or Infinity)",
            reason="INVALID_NUMBER",
        ) from None
    except RecursionError:
        raise _too_deep(what) from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise InvalidArgument(
            "document", f"{what} holds a number with too many digits", reason="INVALID_NUMBER"
        ) from None
    check_uploaded_value(document, what=what)
    return document


def check_uploaded_value(document: Any, *, what: str) -> None:
    """Walks decoded JSON once (no recursion): InvalidArgument naming the path of the first
    string or key Postgres cannot store, or the first place nested too deeply."""
    stack: list[tuple[Any, str, int]] = [(document, "", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path, what)
            continue
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                child = _child_path(path, str(key))
                _check_text(str(key), child, what, key=True)
                children.append((item, child))
        elif isinstance(value, list):
            children = [(item, f"{path}[{index}]") for index, item in enumerate(value)]
        else:
            continue
        if children and depth >= MAX_JSON_DEPTH:
            raise _too_deep(what, path)
        stack.extend((item, child, depth + 1) for item, child in reversed(children))


def _check_text(text: str, path: str, what: str, *, key: bool = False) -> None:
    field = path or "document"
    subject = f"a key of {what} at {field}" if key else f"{what} at {field}"
    if "\x00" in text:
        raise InvalidArgument(
            field,
            f"{subject} contains a NUL character, which cannot be stored",
            reason="NUL_CHARACTER",
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(
                field,
                f"{subject} contains a lone surrogate (\\ud800-\\udfff), which is not text",
                reason="INVALID_TEXT",
            ) from None


def _child_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    shown = key if len(key) <= _KEY_CHARS else key[:_KEY_CHARS] + "…"
    return f"{path}[{json.dumps(shown)}]"


def _too_deep(what: str, path: str = "") -> InvalidArgument:
    return InvalidArgument(
        path or "document",
        f"{what} is nested more than {MAX_JSON_DEPTH} levels deep",
        reason="NESTED_TOO_DEEP",
    )
