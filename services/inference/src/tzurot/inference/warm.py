"""Inference's warm-up at start-up: the first reply after start pays no first-use costs
that the next one does not.

The channels to memory and keyvault start connecting (their TLS handshakes) before the
server reports SERVING, without waiting for them (a peer that is down does not delay
start-up). The o200k encoding (~0.7 s of CPU to build, and ~0.1 s more on its first
encode, which builds tiktoken's regexes) is made in a worker thread that runs alongside the
rest of start-up and the first requests: a reply that needs it before it is ready waits for
that thread rather than building it again (`tokens.load_encoding`). That thread then imports
rapidfuzz for the near-repeat check (`cleanup._lcs_length`, ~8 ms), which inference's start
leaves out: the first turn with recent replies no longer pays it on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc
import tiktoken

from tzurot.inference import cleanup
from tzurot.inference.tokens import load_encoding
from tzurot.runtime.client import connect_channels

DEFAULT_ENCODING = "o200k_base"
"""Counts every model that is not OpenAI's own (most replies), and OpenAI's newest."""


def warm_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """Builds the encoding and encodes once (tiktoken's first encode is its costly one)."""
    encoding = load_encoding(name)
    encoding.encode("warming up")
    return encoding


def warm_first_uses(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """`warm_encoding`, then rapidfuzz's import (`cleanup._lcs_length`); the encoding."""
    encoding = warm_encoding(name)
    cleanup._lcs_length()  # loaded here, off the request path (module doc)
    return encoding


def warm_up(channels: Iterable[grpc.aio.Channel]) -> asyncio.Future[tiktoken.Encoding]:
    """Starts the channels' connections and the warm-up thread (`warm_first_uses`); returns
    the latter, whose result is the encoding."""
    connect_channels(channels)
    return asyncio.get_running_loop().run_in_executor(None, warm_first_uses, DEFAULT_ENCODING)
