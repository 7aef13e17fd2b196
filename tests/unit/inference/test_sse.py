"""Reading a streamed chat completion's body: framing, [DONE], errors mid-stream, answers
cut short."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx2
import openai
import pytest

from tzurot.inference import sse
from tzurot.inference.sse import ErrorEvent, StreamCutShort, chat_chunks

REQUEST = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")


class Body(httpx2.AsyncByteStream):
    """A response body arriving in these pieces; then `fail` (if any) is raised."""

    def __init__(self, pieces: Sequence[bytes], fail: Exception | None = None) -> None:
        self.pieces, self.fail = pieces, fail
        self.read = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            self.read += 1
            yield piece
        if self.fail is not None:
            raise self.fail

    async def aclose(self) -> None:
        self.closed = True


def response(body: Body, content_type: str = "text/event-stream") -> httpx2.Response:
    return httpx2.Response(
        200, headers={"content-type": content_type}, stream=body, request=REQUEST
    )


def event(chunk: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(chunk)}\n\n".encode()


def text(piece: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}


async def collect(chunks: AsyncIterator[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    async for chunk in chunks:
        into.append(chunk)


async def read(body: Body, content_type: str = "text/event-stream") -> list[dict[str, Any]]:
    return [chunk async for chunk in chat_chunks(response(body, content_type))]


async def test_chunks_in_order_up_to_done_and_the_body_is_closed() -> None:
    body = Body([event(text("a")), event(text("b")), b"data: [DONE]\n\n"])
    assert await read(body) == [text("a"), text("b")]
    assert body.closed


async def test_nothing_after_done_is_read_as_a_chunk() -> None:
    body = Body([event(text("a")), b"data: [DONE]\n\n", event(text("late"))])
    assert await read(body) == [text("a")]


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
async def test_any_line_end_split_anywhere(end: bytes) -> None:
    """One body cut into single bytes: CRLF split across pieces still ends one line."""
    whole = (
        b": OPENROUTER PROCESSING" + end + end
        + b"data: " + json.dumps(text("x")).encode() + end + end
        + b"event: message" + end + b"id: 7" + end
        + b"data: " + json.dumps(text("y")).encode() + end + end
        + b"data: [DONE]" + end + end
    )  # fmt: skip
    pieces = [whole[n : n + 1] for n in range(len(whole))]
    assert await read(Body(pieces)) == [text("x"), text("y")]


async def test_data_lines_of_one_event_are_joined() -> None:
    body = Body([b'data: {"choices":\ndata: []}\n\n', b"data: [DONE]\n\n"])
    assert await read(body) == [{"choices": []}]


async def test_an_error_event_mid_stream_raises_the_sdks_api_error() -> None:
    failure = {
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        "error": {"code": 502, "message": "Provider returned error"},
    }
    body = Body([event(text("a")), event(failure), event(text("never"))])
    seen: list[dict[str, Any]] = []
    with pytest.raises(openai.APIError) as caught:
        await collect(chat_chunks(response(body)), seen)
    assert seen == [text("a")]
    assert not isinstance(caught.value, openai.APIStatusError)
    assert caught.value.message == "Provider returned error"
    assert caught.value.body == failure["error"]
    assert body.closed


async def test_an_error_without_a_message_still_fails() -> None:
    with pytest.raises(openai.APIError) as caught:
        await read(Body([event({"error": "overloaded"})]))
    assert caught.value.message == "error during streaming"


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'"text"'])
async def test_data_that_is_not_a_json_object_fails(data: bytes) -> None:
    with pytest.raises(openai.APIError) as caught:
        await read(Body([b"data: " + data + b"\n\n"]))
    assert caught.value.message == "malformed stream event"


async def test_a_body_that_is_not_an_event_stream_fails() -> None:
    with pytest.raises(openai.APIError) as caught:
        await read(Body([b"<html>captive portal</html>"]), content_type="text/html")
    assert caught.value.message == "not a readable event stream"


WHOLE = {
    "object": "chat.completion",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "All of it.",
                "reasoning": "Thought.",
                "tool_calls": [{"id": "c1", "function": {"name": "clock", "arguments": "{}"}}],
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 500, "completion_tokens": 50},
}


async def test_one_json_body_is_one_chunk_its_message_the_delta() -> None:
    """A provider that ignored `stream: true`: its whole answer, in pieces on the wire."""
    raw = json.dumps(WHOLE).encode()
    body = Body([raw[:10], raw[10:]])
    (chunk,) = await read(body, content_type="application/json; charset=utf-8")
    (choice,) = chunk["choices"]
    assert choice["finish_reason"] == "stop"
    assert "message" not in choice
    assert choice["delta"]["content"] == "All of it."
    assert choice["delta"]["tool_calls"][0]["index"] == 0  # numbered by its place
    assert chunk["usage"] == {"prompt_tokens": 500, "completion_tokens": 50}
    assert body.closed


async def test_a_json_body_is_read_as_strictly_as_an_event() -> None:
    with pytest.raises(StreamCutShort):  # no finish_reason: not a whole answer
        await read(Body([b'{"choices": []}']), content_type="application/json")
    with pytest.raises(ErrorEvent) as caught:  # OpenRouter's error in a 200 body
        await read(Body([b'{"error": {"code": 502}}']), content_type="application/json")
    assert caught.value.body == {"code": 502}
    with pytest.raises(openai.APIError) as malformed:
        await read(Body([b"[1, 2]"]), content_type="application/json")
    assert malformed.value.message == "malformed stream event"


async def test_a_json_body_over_the_limit_is_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_JSON_BODY_BYTES", 16)
    body = Body([json.dumps(WHOLE).encode()])
    with pytest.raises(openai.APIError) as caught:
        await read(body, content_type="application/json")
    assert caught.value.message == "answer body too large"
    assert body.closed


async def test_a_broken_connection_mid_stream_is_a_connection_error() -> None:
    body = Body([event(text("a"))], fail=httpx2.RemoteProtocolError("peer closed"))
    with pytest.raises(openai.APIConnectionError) as caught:
        await read(body)
    assert not isinstance(caught.value, openai.APITimeoutError)
    assert body.closed


async def test_a_read_timeout_mid_stream_is_a_timeout() -> None:
    body = Body([event(text("a"))], fail=httpx2.ReadTimeout("slow"))
    with pytest.raises(openai.APITimeoutError):
        await read(body)


async def test_a_consumer_that_stops_early_closes_the_body() -> None:
    body = Body([event(text("a")), event(text("b")), b"data: [DONE]\n\n"])
    chunks = chat_chunks(response(body))
    assert await anext(chunks) == text("a")
    await chunks.aclose()
    assert body.closed
    assert body.read == 1


def finish(reason: str = "stop") -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}


async def test_a_clean_end_without_done_or_a_finish_reason_is_an_answer_cut_short() -> None:
    """A proxy that dies mid-answer may still end the body cleanly: that is no answer."""
    body = Body([event(text("and then")), event(text(" the provider"))])
    seen: list[dict[str, Any]] = []
    with pytest.raises(StreamCutShort):
        await collect(chat_chunks(response(body)), seen)
    assert seen == [text("and then"), text(" the provider")]
    assert body.closed


async def test_an_empty_body_is_an_answer_cut_short() -> None:
    with pytest.raises(StreamCutShort):
        await read(Body([]))


async def test_a_finish_reason_without_done_is_a_whole_answer() -> None:
    """Some providers never send [DONE]: a finish_reason, then the body's end, is enough."""
    usage = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    body = Body([event(text("a")), event(finish()), event(usage)])
    assert await read(body) == [text("a"), finish(), usage]


async def test_data_nested_too_deeply_to_parse_is_a_malformed_event() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(openai.APIError) as caught:
        await read(Body([b'data: {"a": ' + deep + b"}\n\n"]))
    assert caught.value.message == "malformed stream event"


async def test_an_error_event_is_an_error_event_with_its_body() -> None:
    error = {"code": 429, "message": "Rate limit exceeded upstream"}
    with pytest.raises(ErrorEvent) as caught:
        await read(Body([event(text("a")), event({"error": error})]))
    assert caught.value.body == error
