"""One logging pipeline for structlog and the standard library, redacted before rendering.

Everything (our structlog events and stdlib records from grpc, sqlalchemy, discord.py…)
passes the same processors (context, level, logger name, time, service, stack and
exception text, the redactor, the renderer), so nothing reaches stderr without passing the
redactor. Our own events take structlog's native path (a level-filtering bound logger that
writes the rendered line to stderr, no stdlib `LogRecord` in between: the access log writes
one line per RPC); stdlib records go through a `ProcessorFormatter`. Both write under one
lock, so lines never interleave. Tracebacks are formatted to text first and redacted like
any other value, and uncaught exceptions (main thread, other threads) are logged through
the same pipeline instead of Python's default unredacted print to stderr.

Our events' processors run as one call (`_OwnEvent`) whose pieces do only what they must
(context read without copying it, the time formatted once a second, the JSON encoder built
once, recurring clean texts not redacted again): a line went from ~135 to ~87 µs of CPU inside
real turns (PERFORMANCE.md, 7 Dec 2026 evening) and is byte for byte the line structlog's
chain of those processors renders (a test compares them).
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from types import TracebackType
from typing import TextIO

import structlog
from structlog.contextvars import _CONTEXT_VARS, STRUCTLOG_KEY_PREFIX
from structlog.typing import EventDict, Processor, WrappedLogger

from tzurot.runtime.redaction import Redactor, redact

__all__ = ["configure_logging", "redact"]


_WRITE_LOCK = threading.RLock()
"""Held while a line is written to stderr, by stdlib's handler and structlog's logger alike."""


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at emit time (so redirection keeps working)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def createLock(self) -> None:
        self.lock = _WRITE_LOCK

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        """Ignored: the stream is always the current stderr."""


class _StderrLogger:
    """structlog's logger: writes each rendered line to whatever `sys.stderr` is now."""

    def __init__(self, name: str) -> None:
        self.name = name  # read by add_logger_name

    def msg(self, line: str) -> None:
        with _WRITE_LOCK:
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger(*args: object) -> _StderrLogger:
    """structlog's logger factory: `get_logger(name)` names the logger (else "root")."""
    return _StderrLogger(str(args[0]) if args else "root")


def _add_service(service: str) -> Processor:
    def add(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    return add


def _merge_contextvars(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """structlog's `merge_contextvars` without copying the whole context: the values of the
    context variables `bind_contextvars` created (the only ones it merges), where set.
    The two may order the merged keys differently: structlog's order follows the context's
    hashes, which change from process to process."""
    for name, var in tuple(_CONTEXT_VARS.items()):  # a copy: another thread may add a key
        value = var.get(Ellipsis)
        if value is not Ellipsis:
            event.setdefault(name[_PREFIX_CHARS:], value)
    return event


_PREFIX_CHARS = len(STRUCTLOG_KEY_PREFIX)


class _UtcTimestamp:
    """structlog's `TimeStamper(fmt="iso", utc=True)` text (`2026-12-07T18:29:02.123456Z`,
    no fraction when the microseconds are 0), the date and time formatted once a second."""

    def __init__(self) -> None:
        self._second: tuple[int, str] = (-1, "")

    def __call__(self) -> str:
        return self.of(time.time_ns())

    def of(self, ns: int) -> str:
        """The text of `ns` nanoseconds since the epoch (rounded down to microseconds, as
        `datetime.now` does)."""
        second, micro = divmod(ns // 1000, 1_000_000)
        cached, prefix = self._second  # one tuple: threads never see a half-updated pair
        if second != cached:
            moment = datetime.datetime.fromtimestamp(second, datetime.UTC)
            prefix = moment.isoformat().removesuffix("+00:00")
            self._second = (second, prefix)
        return f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"


def _add_timestamp(stamp: _UtcTimestamp) -> Processor:
    def add(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        event["timestamp"] = stamp()
        return event

    return add


def _json_encoder() -> Callable[[EventDict], str]:
    """`json.dumps` with its defaults, its C encoder built once (`json.dumps(…, default=…)`,
    structlog's renderer, builds an encoder and two Python frames a call). No `default`: the
    redactor leaves only JSON's own types (anything else became its redacted repr). No
    circular check: the redactor copies every container, so a cycle never gets here."""
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return json.JSONEncoder().encode
    chunks = c_make_encoder(
        None, None, encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return lambda event: "".join(chunks(event, 0))


_encode_json = _json_encoder()


def _render_json(logger: WrappedLogger, method: str, event: EventDict) -> str:
    return _encode_json(event)


_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}
"""structlog's `add_log_level`: a method's name is its level, but for these two."""


class _OwnEvent:
    """Our events' processors as one call, rendering what structlog's chain of them would
    (`merge_contextvars`, `StackInfoRenderer`, `format_exc_info`, the redactor,
    `add_log_level`, `add_logger_name`, the time stamp, the service, the renderer)."""

    def __init__(
        self, service: str, redactor: Redactor, renderer: Processor, stamp: Callable[[], str]
    ) -> None:
        self._service = service
        self._redactor = redactor
        self._renderer = renderer
        self._stamp = stamp
        # The stack starts at the caller's frame, as when structlog called the processors.
        self._stack_info = structlog.processors.StackInfoRenderer(additional_ignores=[__name__])

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> str:
        _merge_contextvars(logger, method, event)
        if "stack_info" in event or "exc_info" in event:  # the only keys the two act on
            event = self._stack_info(logger, method, event)
            event = structlog.processors.format_exc_info(logger, method, event)
        event = self._redactor(logger, method, event)
        # What follows comes from code, not from input: added after the redactor.
        event["level"] = _LEVEL_OF_METHOD.get(method, method)
        event["logger"] = logger.name
        event["timestamp"] = self._stamp()
        event.setdefault("service", self._service)
        return self._renderer(logger, method, event)  # type: ignore[return-value]  # a str


_UNCAUGHT = "tzurot.uncaught"


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """sys.excepthook: an uncaught exception becomes one redacted CRITICAL event."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger(_UNCAUGHT).critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None:
        return
    logging.getLogger(_UNCAUGHT).critical(
        "uncaught exception in thread %s",
        args.thread.name if args.thread is not None else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


_CHATTY_AT_INFO = ("httpx", "httpx2")
"""Libraries that log every request at INFO."""


def _use_json(fmt: str) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    return not sys.stderr.isatty()


def configure_logging(service: str, *, level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Routes structlog and stdlib logging to stderr as JSON lines or console text.

    `fmt` is "json", "console" or "auto" (JSON unless stderr is a terminal). Every event
    carries `service`; every string value and traceback is redacted, including the exact
    `secrets` given. Calling it again replaces the previous configuration.
    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        raise ValueError(f"unknown log level {level!r}")
    renderer: Processor = (
        _render_json
        if _use_json(fmt)
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    redactor = Redactor(secrets)
    stamp = _UtcTimestamp()
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_context(service, stamp),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_rendering(redactor),
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if _writes_to_console(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # httpx's "HTTP Request: POST …" line for every provider call repeats what our own events
    # say (a line a turn of nine, issue 16); it is kept when debugging.
    for chatty in _CHATTY_AT_INFO:
        quiet = numeric_level if numeric_level <= logging.DEBUG else logging.WARNING
        logging.getLogger(chatty).setLevel(max(numeric_level, quiet))
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    structlog.configure(
        # Our events: what the caller passed (and the contextvars) is redacted; the fields
        # added after it (level, logger, timestamp, service) come from code, not from input.
        processors=[_OwnEvent(service, redactor, renderer, stamp)],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )


def _writes_to_console(handler: logging.Handler) -> bool:
    """Ours, or another handler that writes to stderr or stdout unredacted: one that
    `logging.basicConfig` added before we were configured (the openai SDK calls it at import
    when `OPENAI_LOG` is set; so does a module-level `logging.warning` on an unconfigured
    root). A handler that writes elsewhere (a test's capture) is left alone."""
    if isinstance(handler, _StderrHandler):
        return True
    consoles = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    return isinstance(handler, logging.StreamHandler) and any(
        handler.stream is console for console in consoles
    )


def _context(service: str, stamp: _UtcTimestamp) -> list[Processor]:
    """What a stdlib record gets before rendering (`_OwnEvent` adds the same to ours); the
    contextvars first."""
    return [
        _merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_timestamp(stamp),
        _add_service(service),
    ]


def _rendering(redactor: Redactor) -> list[Processor]:
    """Stack and exception to text, then every value redacted."""
    return [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redactor,
    ]
