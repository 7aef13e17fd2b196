"""The page-text worker: a child process of inference that parses one fetched page at a time
(`python -m tzurot.inference.skills.extract_worker MEMORY_BYTES`).

It loads the parsers, limits its address space to MEMORY_BYTES (RLIMIT_AS), says it is
ready (one byte), then answers requests on stdin/stdout until stdin closes. Before each page
its CPU limit (RLIMIT_CPU, soft) is set to what it has used plus the request's seconds: a
page past that kills it (SIGXCPU), as its parent does at the skill's deadline (extract.py).
Frames are a 4-byte big-endian length and that many bytes: a request is a JSON header
(url, content_type, cpu_seconds) and the page's bytes; a reply is JSON, {"title", "text"} or
{"error"}, with "closing" when the worker ends after it (out of memory). JSON, not pickle,
back to the parent: a parser tricked into running code here must not run it in inference.
Only the standard library and page_text are imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
from typing import BinaryIO

from tzurot.inference.skills.page_text import Unreadable, load_parsers, page_from

READY = b"R"
MAX_FRAME = 64 * 1024 * 1024


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame; None at the end of the stream."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    if size > MAX_FRAME:
        return None
    body = stream.read(size)
    return body if len(body) == size else None


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _limit_cpu(seconds: float) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used.ru_utime + used.ru_stime + seconds) + 1
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def answer(header: bytes, data: bytes) -> tuple[dict[str, str], bool]:
    """The reply to one request, and whether the worker may take another."""
    request = json.loads(header)
    _limit_cpu(float(request["cpu_seconds"]))
    try:
        page = page_from(str(request["url"]), str(request["content_type"]), data)
    except Unreadable as exc:
        return {"error": str(exc)}, True
    except MemoryError:
        return {"error": "the page is too large to read"}, False
    except Exception:  # any parser failure is an unreadable page, not a crash
        return {"error": "the page could not be read"}, True
    return {"title": page.title, "text": page.text}, True


def serve(requests: BinaryIO, replies: BinaryIO, memory_bytes: int) -> None:
    load_parsers()
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    replies.write(READY)
    replies.flush()
    while True:
        header = read_frame(requests)
        data = read_frame(requests) if header is not None else None
        if header is None or data is None:
            return
        reply, go_on = answer(header, data)
        if not go_on:
            reply["closing"] = "1"  # the parent starts another worker
        replies.write(frame(json.dumps(reply).encode()))
        replies.flush()
        if not go_on:
            return


def main() -> None:
    requests, replies = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print from a parser must not break the frames
    with contextlib.suppress(OSError):
        os.nice(5)  # answers come first; a page can wait
    serve(requests, replies, int(sys.argv[1]) if len(sys.argv) > 1 else 0)


if __name__ == "__main__":
    main()
