"""What a shapes.inc import refuses while parsing (so a dry run finds it), how it reads times,
and how a summary longer than a memory becomes several."""

from __future__ import annotations

import json
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tzurot.cli.shapes_import import BackupError, read_backup
from tzurot.gateway.admin.shapes import check_user_map, memory_id
from tzurot.gateway.shapes import documents, summaries
from tzurot.gateway.shapes.documents import load_json, parse_config, parse_history, parse_memories
from tzurot.gateway.shapes.history import exchanges
from tzurot.gateway.shapes.summaries import MEMORY_TEXT_LIMIT, PART_CHARS, summary_parts
from tzurot.gateway.uploaded_json import MAX_JSON_DEPTH
from tzurot.memory import longterm, validation
from tzurot.runtime.errors import InvalidArgument
from tzurot.testing.shapes_backup import long_summary, shape_config, shape_memories, write_backup

DEEPER = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)


def memories(data: bytes) -> Any:
    return parse_memories(load_json(data, source="the memories", root="memories"))


def refusal(call: Any, *args: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        (b'[{"id": "a", "result": NaN}]', "memories", "NaN is not a number JSON allows"),
        (b'[{"id": "a", "result": "x", "n": -Infinity}]', "memories", "-Infinity is not"),
        (b'[{"id": "a", "result": "x", "n": 1e400}]', "memories", "a number is too large"),
        (b'[{"id": "a", "n": ' + b"9" * 5_000 + b"}]", "memories", "more than 300 digits"),
        (b"[" * 5_000 + b"]" * 5_000, "memories", "the memories is nested too deeply"),
        (DEEPER, "memories" + "[0]" * 8 + "…", f"nested more than {MAX_JSON_DEPTH} levels"),
        (b'[{"id": "a", "result": "x\\u0000y"}]', "memories[0].result", "contains NUL"),
        (b'[{"id": "a", "result": "x\\ud83dy"}]', "memories[0].result", "unpaired surrogate"),
        (b'[{"id": "a", "result": "x", "k\\u0000": 1}]', "memories[0].<field>", "field name"),
        (b'[{"id": "a", "result": " "}]', "memories[0].result", "must not be empty"),
        (b"[1, 2", "memories", "is not valid JSON"),
        (b'["\xff"]', "memories", "is not UTF-8"),
    ],
)
def test_what_cannot_be_stored_is_refused_naming_where(data: bytes, field: str, words: str) -> None:
    refused = refusal(memories, data)
    assert refused.field == field
    assert words in refused.message
    assert refused.message.startswith("the memories")


def test_a_bad_configuration_is_refused_naming_the_field_never_the_data() -> None:
    secret = "my secret diary"
    bad = json.dumps(shape_config(jailbreak=f"{secret}\0")).encode()
    refused = refusal(lambda: load_json(bad, source="the configuration", root="config"))
    assert refused.field == "config.jailbreak"
    assert refused.message.startswith("the configuration: config.jailbreak: contains NUL")
    assert secret not in refused.message
    nan = shape_config(engine_temperature="NaN")  # a string pydantic would read as nan
    refused = refusal(parse_config, nan)
    assert refused.field == "config.engine_temperature"
    assert "finite number" in refused.message


@pytest.mark.parametrize(
    ("stamp", "words"),
    [
        (1e20, "must not be in the future (read as milliseconds)"),
        (1.7e15, "must not be in the future (read as milliseconds)"),  # microseconds
        (time.time() + 86_400, "must not be in the future"),
        (-1, "must not be before 1970"),
        ("NaN", "finite number"),
        ("Infinity", "finite number"),
    ],
)
def test_a_time_out_of_range_is_refused_naming_the_field(stamp: object, words: str) -> None:
    item = {**shape_memories(1)[0]}
    item["metadata"] = {**item["metadata"], "end_ts": stamp}
    refused = refusal(parse_memories, [item])
    assert refused.field == "memories[0].metadata.end_ts"
    assert words in refused.message
    message = {"id": "m", "role": "user", "content": "x", "timestamp": stamp}
    refused = refusal(parse_history, [message])
    assert refused.field == "history[0].timestamp"
    assert words in refused.message


def test_times_in_seconds_or_milliseconds_are_the_same_time() -> None:
    seconds, milliseconds = shape_memories(2)
    milliseconds["metadata"] = {**seconds["metadata"]} | {
        key: value * 1000
        for key, value in seconds["metadata"].items()
        if key.endswith(("ts", "at"))
    }
    parsed = parse_memories([seconds, milliseconds])
    assert (
        parsed[0].created_at == parsed[1].created_at == datetime.fromtimestamp(1_690_000_900, UTC)
    )
    assert documents.MILLISECONDS_FROM == 1e11
    history = parse_history(
        [
            {"id": "late", "role": "user", "user_id": "a", "content": "2", "timestamp": 1.6e9},
            {"id": "early", "role": "user", "user_id": "b", "content": "1", "timestamp": 1.5e12},
        ]
    )
    found = exchanges(history, max_turns=16)  # 1.5e12 ms is 1.5e9 s: before the 1.6e9 s one
    assert [e.key for e in found] == ["early", "late"]
    assert found[0].occurred_at == datetime.fromtimestamp(1.5e9, UTC)


def test_messages_memory_would_refuse_are_refused() -> None:
    long = {"id": "m", "role": "user", "content": "x" * (documents.MAX_MESSAGE_CHARS + 1)}
    assert refusal(parse_history, [long]).field == "history[0].content"
    spaced = {"id": "m", "role": "user", "user_id": "a b", "content": "x"}
    assert refusal(parse_history, [spaced]).field == "history[0].user_id"


def test_the_limits_are_memorys() -> None:
    assert MEMORY_TEXT_LIMIT == longterm.MAX_MEMORY_CHARS
    assert documents.MAX_MESSAGE_CHARS == validation.MAX_CONTENT_CHARS


def test_a_summary_within_the_limit_stays_one_memory() -> None:
    text = "A" * MEMORY_TEXT_LIMIT
    assert summary_parts(f"  {text}\n") == [text]


def test_a_real_sized_summary_is_cut_at_paragraphs_then_sentences() -> None:
    summary = long_summary()
    parts = summary_parts(summary)
    assert len(summary) > 10_000
    assert all(0 < len(part) <= PART_CHARS for part in parts)
    assert all(part in summary for part in parts)  # slices of it, its own spacing kept
    assert " ".join(parts).split() == summary.split()  # every word, in order, once
    paragraphs = summary.strip().split("\n\n")
    short = [p for p in paragraphs if len(p) <= PART_CHARS]
    assert all(p in parts for p in short)  # a paragraph that fits is a part of its own
    long = next(p for p in paragraphs if len(p) > PART_CHARS)
    pieces = [part for part in parts if part in long]
    assert len(pieces) >= 2
    assert all(piece.endswith((".", "!", "?")) for piece in pieces)  # cut after sentences
    assert summary_parts(summary) == parts  # the same every time: the ids stay stable


def test_text_without_spaces_is_cut_by_length_and_kept_whole() -> None:
    unspaced = "x" * 9_000
    assert [len(p) for p in summary_parts(unspaced)] == [1_200] * 7 + [600]
    japanese = "灯台守は嵐の夜も灯を守った。" * 400
    parts = summary_parts(japanese)
    assert "".join(parts) == japanese
    assert all(p.endswith("。") for p in parts)
    assert summaries.PART_CHARS < MEMORY_TEXT_LIMIT


def test_a_split_summary_has_stable_ids_per_part() -> None:
    whole = memory_id("p", "a/b")
    assert whole == memory_id("p", "a/b", 0)  # as before splitting existed
    assert len({whole, memory_id("p", "a/b", 1), memory_id("p", "a/b", 2)}) == 3
    assert memory_id("p", "a/b", 1) == memory_id("p", "a/b", 1)


def test_the_user_map_maps_to_discord_ids() -> None:
    check_user_map({"a": "123456789012345678", "b": ""})
    for bad in ("alice", "12 34", "1\0", "١٢٣", "1" * 21):
        assert refusal(check_user_map, {"a": bad}).field == "user_map"


def test_the_cli_reads_a_folder_with_a_file_it_cannot_parse(tmp_path: Path) -> None:
    backup = write_backup(tmp_path / "deep")
    (backup.folder / "deep.json").write_text("[" * 5_000 + "]" * 5_000)
    with pytest.raises(BackupError, match="nested too deeply"):
        read_backup(backup.folder)
    (backup.folder / "deep.json").write_text("[" + "7" * 5_000 + "]")
    with pytest.raises(BackupError, match="number too large"):
        read_backup(backup.folder)


def test_a_document_of_too_many_json_values_is_refused_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real limit is 4 million (6 s to walk); without a limit this document is read.
    monkeypatch.setattr(documents, "MAX_DOCUMENT_VALUES", 1000, raising=False)
    data = b"[" + b"0," * 1000 + b"0]"
    with pytest.raises(InvalidArgument) as caught:
        load_json(data, source="the chat history", root="history")
    assert caught.value.reason == "TOO_LARGE"
    assert "the chat history" in caught.value.message
    assert "more than 1000 JSON values" in caught.value.message
    history = [{"id": f"m{n}", "role": "user", "content": "hi"} for n in range(100)]
    assert len(parse_history(load_json(json.dumps(history).encode(), source="h", root="h"))) == 100


def test_a_real_backup_at_the_size_limit_is_within_the_value_limit() -> None:
    """The densest real document, a chat history of the shortest messages, filling the whole
    `MAX_DOCUMENT_BYTES`, holds fewer values than `MAX_DOCUMENT_VALUES`; the backup of
    SHAPES_BACKUP.md (625 messages, 107 summaries of ~11 KB) holds a few thousand."""
    message = {
        "id": "0c9d7e2a-1111-4a4a-9e9e-00000000000a",
        "shape_id": "5b0f3a52-8d1c-4a8e-9a4e-2f1d6c0e7b11",
        "user_id": "0c9d7e2a-1111-4a4a-9e9e-000000000001",
        "role": "user",
        "content": "ok",
        "timestamp": 1690000000,
    }
    size = len(json.dumps(message, separators=(",", ":"))) + 1  # and its comma
    values = 1 + len(message)  # the object and its fields
    assert documents.MAX_DOCUMENT_BYTES // size * values < documents.MAX_DOCUMENT_VALUES
    assert documents.MAX_DOCUMENT_VALUES <= documents.MAX_DOCUMENT_BYTES // 16
    backup = json.dumps(shape_memories(107)).encode()
    assert parse_memories(load_json(backup, source="the memories", root="memories"))


def test_a_document_over_the_value_limit_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted in its bytes: `[{},{},…]` up to 64 MB was parsed (some 70 bytes a value,
    hundreds of MB) before the count refused it (review 160, 11)."""
    monkeypatch.setattr(documents, "MAX_DOCUMENT_VALUES", 100_000, raising=False)
    data = b"[" + b",".join([b"{}"] * 100_000) + b"]"  # 100,001 values with the list
    tracemalloc.start()
    try:
        with pytest.raises(InvalidArgument) as caught:
            load_json(data, source="the chat history", root="history")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (caught.value.reason, caught.value.field) == ("TOO_LARGE", "history")
    assert peak < 2 * len(data), f"peak {peak} bytes"
    assert load_json(data[: -len(b",{}]")] + b"]", source="h", root="h")  # 100,000: read
