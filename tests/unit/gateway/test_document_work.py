"""Uploaded documents are read one at a time in the gateway, on a worker thread: a card, a
lorebook and a shapes.inc document each cost many times their size while read, and two or
three at once could take the gateway past its 512 MiB (review 160, 2 and 11). The shapes.inc
documents were read on the event loop itself."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tzurot.gateway.admin import cards as card_admin
from tzurot.gateway.admin import lorebooks as lorebook_admin
from tzurot.gateway.admin import shapes as shapes_admin
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.document_work import MAX_AT_ONCE, run_document_work
from tzurot.runtime.errors import InvalidArgument

OPERATOR = Principal(user=None)


class Reads:
    """A stand-in for a document's reading: how many ran at once, and on which threads."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.get_ident())
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        raise InvalidArgument("document", "stopped here by the test")


async def test_work_runs_one_at_a_time_off_the_event_loop() -> None:
    reads = Reads()
    results = await asyncio.gather(
        *(run_document_work(reads) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(r, InvalidArgument) for r in results)
    assert reads.most == MAX_AT_ONCE == 1
    assert threading.get_ident() not in reads.threads


async def test_card_lorebook_and_shapes_imports_share_the_one_slot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = Reads()
    monkeypatch.setattr(card_admin, "_read_card", reads)
    monkeypatch.setattr(lorebook_admin, "read_lorebook_document", reads)
    monkeypatch.setattr(shapes_admin, "read_config", reads)
    monkeypatch.setattr(shapes_admin, "read_memories", reads)
    monkeypatch.setattr(shapes_admin, "read_history", reads)
    cards = object.__new__(card_admin.CardAdmin)
    lore = object.__new__(lorebook_admin.LorebookAdmin)
    shapes = object.__new__(shapes_admin.ShapesAdmin)
    imports: list[Callable[[], Awaitable[Any]]] = [
        lambda: cards.import_card(OPERATOR, b"{}"),
        lambda: lore.import_lorebook(OPERATOR, b"{}", "", None),
        lambda: shapes.import_shapes(
            OPERATOR, b"{}", aliases=(), avatar=b"", avatar_type="", owner="", dry_run=True
        ),
        lambda: shapes.import_shapes_memories(OPERATOR, "s", b"[]", {}, dry_run=True),
        lambda: shapes.import_shapes_history(OPERATOR, "s", b"[]", {}, channel_id="", dry_run=True),
    ]
    results = await asyncio.gather(*(run() for run in imports), return_exceptions=True)
    assert [type(r) for r in results] == [InvalidArgument] * len(imports)
    assert reads.most == 1
    assert threading.get_ident() not in reads.threads  # shapes.inc's too, once on the loop
