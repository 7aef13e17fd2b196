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
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import TextIO

import structlog
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
    json = _use_json(fmt)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    redactor = Redactor(secrets)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_context(service),
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
        processors=[
            structlog.contextvars.merge_contextvars,
            *_rendering(redactor),
            *_context(service)[1:],
            renderer,
        ],
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


def _context(service: str) -> list[Processor]:
    """What every event gets before rendering (structlog's and stdlib's alike); the
    contextvars first."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
    ]


def _rendering(redactor: Redactor) -> list[Processor]:
    """Stack and exception to text, then every value redacted."""
    return [
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        redactor,
    ]
