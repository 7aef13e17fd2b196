"""Readable text from a fetched page (page_text.py), parsed where it cannot take inference
down with it.

A thread cannot be stopped: a page that makes a parser spend minutes kept running (and
growing) after the skill's deadline (review 158 H2). `ProcessExtractor` parses in a child
process (extract_worker.py) started at the first page read (not with inference: most
replicas never read one), then kept: its address space is limited (RLIMIT_AS), its CPU a
page (RLIMIT_CPU), and it is killed at the page's time limit or the skill's deadline (a
cancelled call), then replaced in the background. One page is parsed at a time.
`InlineExtractor` parses in a worker thread, one page at a time even past a cancellation
(tests, and the skills' default when built alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from tzurot.inference.skills.base import SkillError
from tzurot.inference.skills.page_text import (
    HTML_TYPES,
    MAX_PDF_PAGES,
    PDF_TYPES,
    READABLE_TYPES,
    TEXT_TYPES,
    Page,
    Unreadable,
    page_from,
)

if TYPE_CHECKING:
    from tzurot.inference.skills.egress import Fetched

__all__ = [
    "HTML_TYPES",
    "MAX_PDF_PAGES",
    "PDF_TYPES",
    "READABLE_TYPES",
    "TEXT_TYPES",
    "Extractor",
    "InlineExtractor",
    "Page",
    "ProcessExtractor",
    "WorkerLimits",
    "extract",
    "extract_sync",
]

WORKER_MODULE = "tzurot.inference.skills.extract_worker"
START_SECONDS = 60.0
MAX_REPLY_BYTES = 8 * 1024 * 1024


class Extractor(Protocol):
    async def extract(self, fetched: Fetched) -> Page: ...


def extract_sync(fetched: Fetched) -> Page:
    """The page's text, in this thread; SkillError when it has none."""
    try:
        return page_from(fetched.url, fetched.content_type, fetched.data)
    except Unreadable as exc:
        raise SkillError(str(exc)) from None


async def extract(fetched: Fetched) -> Page:
    """The page's text, in a worker thread (not bounded in time: see the module's docstring)."""
    return await asyncio.to_thread(extract_sync, fetched)


class InlineExtractor:
    """Pages parsed in a worker thread, one at a time: a cancelled call keeps the turn until
    its thread is done, so abandoned parses never pile up."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def extract(self, fetched: Fetched) -> Page:
        return await asyncio.shield(self._one(fetched))

    async def _one(self, fetched: Fetched) -> Page:
        async with self._lock:
            return await asyncio.to_thread(extract_sync, fetched)


@dataclass(frozen=True)
class WorkerLimits:
    memory_bytes: int = 256 * 1024 * 1024
    """The worker's address space (RLIMIT_AS); it needs about 80 MB to start."""
    seconds: float = 10.0
    """A page's CPU (RLIMIT_CPU) and wall time; the skill's own deadline may come first."""


class ProcessExtractor:
    """Pages parsed in a child process (see the module's docstring)."""

    def __init__(
        self, limits: WorkerLimits | None = None, command: Sequence[str] | None = None
    ) -> None:
        self._limits = limits or WorkerLimits()
        self._command = tuple(command or (sys.executable, "-m", WORKER_MODULE))
        self._lock = asyncio.Lock()
        self._starting: asyncio.Task[asyncio.subprocess.Process] | None = None
        self._ending: set[asyncio.Task[object]] = set()
        self.started = 0
        """Workers started so far (tests and the operator's curiosity)."""

    def start(self) -> None:
        """Starts the worker in the background, unless one is running or starting."""
        if self._starting is None:
            self._starting = asyncio.get_running_loop().create_task(self._spawn())
            self.started += 1

    async def extract(self, fetched: Fetched) -> Page:
        async with self._lock:
            process = await self._worker()
            try:
                async with asyncio.timeout(self._limits.seconds):
                    reply = await self._ask(process, fetched)
            except TimeoutError:
                self._replace(process)
                raise SkillError(
                    f"the page took longer than {self._limits.seconds:g} s to read"
                ) from None
            except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                # The worker died: its memory or CPU limit (SIGXCPU), or a parser crash.
                self._replace(process)
                raise SkillError("the page is too large or too complex to read") from None
            except BaseException:  # cancelled at the skill's deadline: the parse goes too
                self._replace(process)
                raise
            if reply.get("closing"):
                self._replace(process)
        if "error" in reply:
            raise SkillError(str(reply["error"]))
        return Page(fetched.url, str(reply.get("title", "")), str(reply.get("text", "")))

    async def aclose(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(BaseException):
                process = await starting
                _kill(process)
                await process.wait()
        for task in list(self._ending):
            with contextlib.suppress(BaseException):
                await task

    async def _worker(self) -> asyncio.subprocess.Process:
        self.start()
        assert self._starting is not None
        try:
            # Shielded: a call cancelled while the worker starts leaves it starting.
            process = await asyncio.shield(self._starting)
        except (OSError, RuntimeError, asyncio.IncompleteReadError, TimeoutError) as exc:
            self._starting = None  # the next page tries again
            raise SkillError("pages cannot be read just now") from exc
        if process.returncode is not None:  # died between pages
            self._replace(process)
            return await self._worker()
        return process

    async def _spawn(self) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *self._command,
            str(self._limits.memory_bytes),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(START_SECONDS):
                ready = await process.stdout.readexactly(1)
            if ready != b"R":
                raise RuntimeError("the page worker did not start")
        except BaseException:
            _kill(process)
            with contextlib.suppress(BaseException):
                await process.wait()
            raise
        return process

    async def _ask(self, process: asyncio.subprocess.Process, fetched: Fetched) -> dict[str, str]:
        assert process.stdin is not None
        assert process.stdout is not None
        header = json.dumps(
            {
                "url": fetched.url,
                "content_type": fetched.content_type,
                "cpu_seconds": self._limits.seconds,
            }
        ).encode()
        process.stdin.write(_frame(header) + _frame(fetched.data))
        await process.stdin.drain()
        size = int.from_bytes(await process.stdout.readexactly(4), "big")
        if size > MAX_REPLY_BYTES:
            raise ValueError("the page worker's reply is too large")
        reply = json.loads(await process.stdout.readexactly(size))
        if not isinstance(reply, dict):
            raise ValueError("the page worker's reply is not an object")
        return reply

    def _replace(self, process: asyncio.subprocess.Process) -> None:
        """Kills `process` and starts the next worker in the background."""
        _kill(process)
        ending = asyncio.get_running_loop().create_task(process.wait())
        self._ending.add(ending)
        ending.add_done_callback(self._ending.discard)
        self._starting = None
        self.start()


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
