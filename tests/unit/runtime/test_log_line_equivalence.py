"""Our events' one-call pipeline renders the line structlog's chain of processors rendered."""

from __future__ import annotations

import datetime
import json
import logging
import math
import threading
from collections.abc import Callable

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.typing import EventDict

from tzurot.runtime import logging as tz_logging
from tzurot.runtime.logging import configure_logging
from tzurot.runtime.redaction import Redactor

pytestmark = pytest.mark.usefixtures("restore_logging")

KEY = "sk-or-v1-" + "c0ffee" * 8
DB_PASSWORD = "correct-horse-battery"
STAMP = "2026-12-07T18:00:00.000001Z"


class _Opaque:
    def __repr__(self) -> str:
        return f"<opaque {KEY}>"


def _log_all(log: structlog.typing.FilteringBoundLogger) -> None:
    """The same calls, from the same line, for both pipelines (a stack names its lines)."""
    bound = log.bind(job_id="j-1", key=KEY)
    with structlog.contextvars.bound_contextvars(request_id=f"req-{DB_PASSWORD}"):
        log.info("rpc.served", method="/tzurot.v1.X/Y", code="OK", duration_ms=1.25)
        log.info("rpc.served", method="/tzurot.v1.X/Y", code="OK", duration_ms=1.25)  # again
        bound.warn("deprecated alias", ratio=math.nan, big=10**30, flag=True, none=None)
        bound.warning("key %s refused after %d tries", KEY, 3)
        log.info(
            "nested",
            headers=[f"Bearer {KEY}", ("tuple", 1)],
            nested={"dsn": f"postgres://u:{DB_PASSWORD}@h/db", 3: {"x"}},
            text='caf\u00e9 \u2028 \ud83d\ude00 "quoted" \\ back',
            opaque=_Opaque(),
            service="overridden",
        )
        log.info("with stack", stack_info=True)
        log.info("stack off", stack_info=False, exc_info=False)
        try:
            raise RuntimeError(f"provider rejected {KEY} (db {DB_PASSWORD})")
        except RuntimeError:
            log.exception("call.failed")
            bound.error("error with exc_info", exc_info=True)
    structlog.get_logger().info("no context, root logger")


def _reference_chain(service: str) -> list[structlog.typing.Processor]:
    """The processors our events passed before they ran as one call."""

    def stamp(logger: object, method: str, event: EventDict) -> EventDict:
        event["timestamp"] = STAMP
        return event

    def add_service(logger: object, method: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        Redactor([DB_PASSWORD]),
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        stamp,
        add_service,
        structlog.processors.JSONRenderer(),
    ]


def _lines(capsys: pytest.CaptureFixture[str], configure: Callable[[], None]) -> list[str]:
    configure()
    _log_all(structlog.get_logger("tzurot.test"))
    return capsys.readouterr().err.splitlines()


def test_a_line_is_byte_for_byte_what_structlogs_own_processors_rendered(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def ours() -> None:
        configure_logging("memory", level="INFO", fmt="json", secrets=[DB_PASSWORD])
        (own,) = structlog.get_config()["processors"]
        own._stamp = lambda: STAMP

    def reference() -> None:
        configure_logging("memory", level="INFO", fmt="json", secrets=[DB_PASSWORD])
        structlog.configure(processors=_reference_chain("memory"))

    expected, got = [_lines(capsys, configure) for configure in (reference, ours)]  # one line
    assert len(expected) == 10
    assert got == expected
    assert KEY not in "".join(got)
    assert DB_PASSWORD not in "".join(got)
    stacked = json.loads(got[5])
    assert "_log_all" in stacked["stack"]
    assert "tzurot/runtime/logging.py" not in stacked["stack"]  # starts at the caller


def test_merged_context_is_structlogs_whatever_was_bound_or_cleared() -> None:
    def both() -> tuple[EventDict, EventDict]:
        ours = tz_logging._merge_contextvars(None, "info", {"own": 1, "caller": "kept"})
        theirs = structlog.contextvars.merge_contextvars(None, "info", {"own": 1, "caller": "kept"})
        return ours, theirs

    structlog.contextvars.clear_contextvars()
    ours, theirs = both()
    assert ours == theirs == {"own": 1, "caller": "kept"}
    tokens = structlog.contextvars.bind_contextvars(request_id="r", caller="bot", a_new_key=None)
    ours, theirs = both()
    assert ours == theirs == {"own": 1, "caller": "kept", "request_id": "r", "a_new_key": None}
    structlog.contextvars.unbind_contextvars("request_id")
    assert both()[0] == both()[1] == {"own": 1, "caller": "kept", "a_new_key": None}
    structlog.contextvars.reset_contextvars(**tokens)
    assert both()[0] == both()[1] == {"own": 1, "caller": "kept"}
    structlog.contextvars.bind_contextvars(request_id="r2")
    structlog.contextvars.clear_contextvars()
    assert both()[0] == both()[1] == {"own": 1, "caller": "kept"}


def test_context_bound_in_another_thread_is_not_merged_here() -> None:
    structlog.contextvars.clear_contextvars()
    thread = threading.Thread(
        target=structlog.contextvars.bind_contextvars, kwargs={"only_there": 1}
    )
    thread.start()
    thread.join()
    assert tz_logging._merge_contextvars(None, "info", {}) == {}


EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def _timestamper_text(ns: int) -> str:
    """What `TimeStamper(fmt="iso", utc=True)` writes for that instant."""
    moment = EPOCH + datetime.timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


@given(st.lists(st.integers(min_value=0, max_value=4_102_444_800 * 10**9), max_size=20))
def test_a_timestamp_reads_as_structlogs(instants: list[int]) -> None:
    stamp = tz_logging._UtcTimestamp()
    for ns in instants:
        assert stamp.of(ns) == _timestamper_text(ns)


@pytest.mark.parametrize(
    "ns",
    [
        1_796_666_400 * 10**9,  # a whole second: no fraction, as isoformat writes it
        1_796_666_400 * 10**9 + 999,  # under a microsecond: rounded down to a whole second
        1_796_666_400 * 10**9 + 1_000,
        1_796_666_400 * 10**9 + 999_999_999,
    ],
)
def test_a_timestamp_on_or_near_a_whole_second(ns: int) -> None:
    stamp = tz_logging._UtcTimestamp()
    stamp.of(ns - 10**9)  # a cached second before it
    assert stamp.of(ns) == _timestamper_text(ns)


def test_the_timestamp_is_now() -> None:
    before = datetime.datetime.now(tz=datetime.UTC)
    text = tz_logging._UtcTimestamp()()
    after = datetime.datetime.now(tz=datetime.UTC)
    assert text.endswith("Z")
    assert before <= datetime.datetime.fromisoformat(text) <= after


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=8))
def test_the_json_is_json_dumps(event: dict[str, object]) -> None:
    assert tz_logging._render_json(None, "info", event) == json.dumps(event)


def test_stdlib_records_carry_the_same_fields_in_the_same_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("gateway", level="INFO", fmt="json")
    with structlog.contextvars.bound_contextvars(request_id="r"):
        structlog.get_logger("tzurot.a").info("ours")
        logging.getLogger("tzurot.b").info("stdlib")
    ours, stdlib = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert list(ours) == ["event", "request_id", "level", "logger", "timestamp", "service"]
    assert list(stdlib) == list(ours)
