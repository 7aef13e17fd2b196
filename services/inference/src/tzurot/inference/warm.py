"""Inference's warm-up at start-up: the first reply after start pays no first-use costs
that the next one does not.

The channels to memory and keyvault start connecting (their TLS handshakes) before the
server reports SERVING, without waiting for them (a peer that is down does not delay
start-up). The o200k encoding (~0.7 s of CPU to build, and ~0.1 s more on its first
encode, which builds tiktoken's regexes) is made in a worker thread that runs alongside the
rest of start-up and the first requests: a reply that needs it before it is ready waits for
that thread rather than building it again (`tokens.load_encoding`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import grpc
import tiktoken

from tzurot.inference.tokens import load_encoding
from tzurot.runtime.client import connect_channels

DEFAULT_ENCODING = "o200k_base"
"""Counts every model that is not OpenAI's own (most replies), and OpenAI's newest."""


def warm_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """Builds the encoding and encodes once (tiktoken's first encode is its costly one)."""
    encoding = load_encoding(name)
    encoding.encode("warming up")
    return encoding


def warm_up(channels: Iterable[grpc.aio.Channel]) -> asyncio.Future[tiktoken.Encoding]:
    """Starts the channels' connections and the encoding's thread; returns the latter."""
    connect_channels(channels)
    return asyncio.get_running_loop().run_in_executor(None, warm_encoding, DEFAULT_ENCODING)
