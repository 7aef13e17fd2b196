"""configure_logging(): JSON/console output on stderr, service field, redaction everywhere."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import structlog

from tzurot.runtime.logging import configure_logging

KEY = "sk-or-v1-" + "c0ffee" * 8
DB_PASSWORD = "correct-horse-battery"


pytestmark = pytest.mark.usefixtures("restore_logging")


def json_lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_events_carry_service_and_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("keyvault", level="INFO", fmt="json", secrets=[DB_PASSWORD])
    log = structlog.get_logger("tzurot.test")
    log.info(
        "key.stored",
        key=KEY,
        nested={"headers": [f"Bearer {KEY}"], "dsn": f"postgres://u:{DB_PASSWORD}@h/db"},
    )
    log.debug("hidden")
    (event,) = json_lines(capsys.readouterr().err)
    assert event["event"] == "key.stored"
    assert event["service"] == "keyvault"
    assert event["level"] == "info"
    text = json.dumps(event)
    assert KEY not in text
    assert DB_PASSWORD not in text
    assert event["nested"] == {
        "headers": ["Bearer [REDACTED]"],
        "dsn": "postgres://u:[REDACTED]@h/db",
    }


def test_stdlib_records_go_through_the_same_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("inference", level="DEBUG", fmt="json")
    logging.getLogger("httpx").warning("POST with api_key=%s failed", KEY)
    (event,) = json_lines(capsys.readouterr().err)
    assert event["service"] == "inference"
    assert event["logger"] == "httpx"
    assert event["level"] == "warning"
    assert KEY not in json.dumps(event)
    assert str(event["event"]).startswith("POST with api_key=[REDACTED]")


def test_exception_tracebacks_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("gateway", level="INFO", fmt="json", secrets=[DB_PASSWORD])
    log = structlog.get_logger("tzurot.test")
    try:
        raise RuntimeError(f"provider rejected {KEY} (db {DB_PASSWORD})")
    except RuntimeError:
        log.exception("call.failed")
        logging.getLogger("sqlalchemy").exception("stdlib too")
    err = capsys.readouterr().err
    events = json_lines(err)
    assert [e["event"] for e in events] == ["call.failed", "stdlib too"]
    for event in events:
        assert "RuntimeError: provider rejected [REDACTED]" in str(event["exception"])
    assert KEY not in err
    assert DB_PASSWORD not in err


def test_console_format_is_redacted_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("bot", level="INFO", fmt="console")
    try:
        raise ValueError(KEY)
    except ValueError:
        structlog.get_logger().exception("boom", token=KEY)
    err = capsys.readouterr().err
    assert "boom" in err
    assert "ValueError" in err
    assert KEY not in err


def test_auto_format_is_json_when_stderr_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("memory", level="INFO", fmt="auto")
    structlog.get_logger().info("hello")
    assert json_lines(capsys.readouterr().err)[0]["event"] == "hello"


def test_reconfiguring_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("memory", level="INFO", fmt="json")
    configure_logging("memory", level="INFO", fmt="json")
    structlog.get_logger().info("once")
    assert len(json_lines(capsys.readouterr().err)) == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("memory", level="LOUD", fmt="json")


UNCAUGHT = f"""
import threading
from tzurot.runtime.logging import configure_logging

configure_logging("bot", level="INFO", fmt="json", secrets=["{DB_PASSWORD}"])
def fail() -> None:
    raise ValueError("{KEY}")

thread = threading.Thread(target=fail, name="worker")
thread.start()
thread.join()
raise RuntimeError("token {KEY} password {DB_PASSWORD}")
"""


def test_uncaught_exceptions_are_logged_redacted() -> None:
    result = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1
    events = json_lines(result.stderr)
    assert [(e["event"], e["level"], e["service"]) for e in events] == [
        ("uncaught exception in thread worker", "critical", "bot"),
        ("uncaught exception", "critical", "bot"),
    ]
    assert "ValueError: [REDACTED]" in str(events[0]["exception"])
    assert "RuntimeError: token [REDACTED] password [REDACTED]" in str(events[1]["exception"])
    assert KEY not in result.stderr
    assert DB_PASSWORD not in result.stderr


def test_bound_context_and_positional_arguments_are_redacted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("gateway", level="INFO", fmt="json")
    log = structlog.get_logger("tzurot.rpc")
    with structlog.contextvars.bound_contextvars(request_id=f"req-{KEY}", caller="bot"):
        log.info("rpc.served", code="OK")
        log.warning("key %s refused", KEY)
    events = json_lines(capsys.readouterr().err)
    assert [e["event"] for e in events] == ["rpc.served", "key [REDACTED] refused"]
    assert events[0]["request_id"] == "req-[REDACTED]"
    assert {(e["logger"], e["service"], e["caller"]) for e in events} == {
        ("tzurot.rpc", "gateway", "bot")
    }
    assert [e["level"] for e in events] == ["info", "warning"]
    assert all(str(e["timestamp"]).endswith("Z") for e in events)


def test_structlog_and_stdlib_lines_share_one_stream_in_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("memory", level="WARNING", fmt="json")
    structlog.get_logger("tzurot.a").info("filtered out")
    structlog.get_logger("tzurot.a").warning("first")
    logging.getLogger("sqlalchemy").warning("second")
    structlog.get_logger("tzurot.b").error("third")
    events = json_lines(capsys.readouterr().err)
    assert [(e["event"], e["logger"]) for e in events] == [
        ("first", "tzurot.a"),
        ("second", "sqlalchemy"),
        ("third", "tzurot.b"),
    ]


OPENAI_LOG_SET = f"""
import logging
import os

import openai  # with OPENAI_LOG set, adds a plain stderr handler to the root logger

from tzurot.runtime.logging import configure_logging

configure_logging("inference", level="INFO", fmt="json", secrets=["{DB_PASSWORD}"])
try:
    raise RuntimeError("provider said: bad key {KEY} / {DB_PASSWORD}")
except RuntimeError:
    logging.getLogger("asyncio").exception("Task exception was never retrieved")
"""


def test_a_console_handler_added_before_configuration_is_replaced() -> None:
    """The openai SDK calls logging.basicConfig at import when OPENAI_LOG is set: its plain
    stderr handler would write every stdlib record a second time, unredacted."""
    env = {**os.environ, "OPENAI_LOG": "info"}
    result = subprocess.run(
        [sys.executable, "-c", OPENAI_LOG_SET],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    (event,) = json_lines(result.stderr)  # one line: no second, plain copy
    assert event["event"] == "Task exception was never retrieved"
    assert "RuntimeError: provider said: bad key [REDACTED] / [REDACTED]" in str(event["exception"])
    assert KEY not in result.stderr
    assert DB_PASSWORD not in result.stderr


def test_httpx_request_lines_are_left_out_at_info_and_kept_when_debugging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("svc", level="INFO", fmt="json")
    logging.getLogger("httpx2").info('HTTP Request: POST http://provider/v1 "HTTP/1.1 200 OK"')
    logging.getLogger("httpx").warning("connection reset")
    assert [event["event"] for event in json_lines(capsys.readouterr().err)] == ["connection reset"]
    configure_logging("svc", level="DEBUG", fmt="json")
    logging.getLogger("httpx2").info("HTTP Request: POST http://provider/v1")
    assert (
        json_lines(capsys.readouterr().err)[0]["event"] == "HTTP Request: POST http://provider/v1"
    )
