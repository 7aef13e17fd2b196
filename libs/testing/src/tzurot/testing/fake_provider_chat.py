"""The fake provider's chat completions: each vendor rule checked in turn (the model, tools,
per-model parameters, Gemini's thought signatures, OpenRouter's routing and output modalities,
the context window), then the answer: scripted or `reply`, as one JSON body or an SSE stream
with the faults a test set (a dropped connection, a clean cut, an error event, keepalive
comments, a stall, no `[DONE]`)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tzurot.testing.fake_model_params import check_model_parameters
from tzurot.testing.fake_provider_errors import context_length_error, error_body
from tzurot.testing.fake_provider_images import (
    chat_output_refusal,
    image_config_refusal,
    output_modalities,
)
from tzurot.testing.fake_provider_replies import ScriptedReply, estimate_tokens, text_of, words
from tzurot.testing.fake_tools import (
    check_thought_signatures,
    check_tools,
    gemini_tool_call_chunks,
    image_reply,
    new_thought_signature,
    tool_call_chunks,
    tool_call_message,
    tools_allowed,
)

if TYPE_CHECKING:
    from tzurot.testing.fake_provider import FakeProvider


async def chat_completion(fake: FakeProvider, request: web.Request) -> web.StreamResponse:  # noqa: PLR0911  # one answer per vendor rule
    body, refused = await fake._admit(request)
    if refused:
        return refused
    model = str(body.get("model", ""))
    if model not in fake.models and not fake.any_model:
        return error_body(
            404,
            f"The model `{model}` does not exist",
            "model_not_found",
            "invalid_request_error",
        )
    tool_error = check_tools(body)
    if tool_error is not None:
        return error_body(400, tool_error, "invalid_request_error", "invalid_request_error")
    check_model_parameters(body, model)  # raises the vendor's 400
    if model in fake.gemini_tool_models:
        unsigned = check_thought_signatures(body.get("messages") or [], fake._thought_signatures)
        if unsigned is not None:  # Gemini's error body is a list of one error
            error = {"code": 400, "message": unsigned, "status": "INVALID_ARGUMENT"}
            return web.json_response([{"error": error}], status=400)
    routing = body.get("provider")
    only = routing.get("only") if isinstance(routing, dict) else None
    routed_away = (
        isinstance(only, list)
        and bool(only)
        and all(isinstance(host, str) and host in fake.no_tool_hosts for host in only)
    )
    if body.get("tools") and (model in fake.no_tool_models or routed_away):
        # OpenRouter's answer when no endpoint of the model supports tool use.
        return error_body(
            404,
            "No endpoints found that support tool use. To learn more about provider "
            "routing, visit: https://openrouter.ai/docs/provider-routing",
            "404",
            "invalid_request_error",
        )
    outputs = output_modalities(model, fake.image_models, fake.image_only_models)
    refused = chat_output_refusal(body, outputs) or image_config_refusal(body, model)
    if refused is not None:
        return refused
    if "image" in (body.get("modalities") or []):
        return web.json_response(image_reply(body, model, image_bytes=fake.image_bytes))
    prompt_tokens = sum(
        estimate_tokens(text_of(m.get("content"))) for m in body.get("messages", [])
    )
    output = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    asked = prompt_tokens + int(output)
    if fake.context_limit is not None and asked > fake.context_limit:
        return context_length_error(fake.context_error_shape, fake.context_limit, asked)
    scripted = next_reply(fake, body)
    text = scripted.text
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": estimate_tokens(text),
        "total_tokens": prompt_tokens + estimate_tokens(text),
    }
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": model,
    }
    if not body.get("stream") or fake.ignore_stream:
        if scripted.tool_calls:
            return web.json_response(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": tool_call_message(
                                text, scripted.tool_calls, signature_for(fake, model)
                            ),
                            "finish_reason": "tool_calls",
                        }
                    ],
                    "usage": usage,
                }
            )
        return web.json_response(
            {
                **head,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": text,
                            **(
                                {scripted.reasoning_field: scripted.reasoning}
                                if scripted.reasoning
                                else {}
                            ),
                        },
                        "finish_reason": scripted.finish_reason,
                    }
                ],
                "usage": usage,
            }
        )
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    streams_usage = include_usage and fake.sends_usage
    return await stream_answer(fake, request, head, scripted, usage if streams_usage else None)


def next_reply(fake: FakeProvider, body: dict[str, Any]) -> ScriptedReply:
    """The scripted answer, `keep_calling`'s call, or `reply`; tool calls only where the
    request allows them (tool_choice "none" gets text, as from the vendor)."""
    allowed = tools_allowed(body)
    if fake.keep_calling is not None and allowed:
        return ScriptedReply("", finish_reason="tool_calls", tool_calls=(fake.keep_calling,))
    if fake.script and (allowed or not fake.script[0].tool_calls):
        return fake.script.pop(0)
    produced = fake.reply(body) if callable(fake.reply) else fake.reply
    if isinstance(produced, ScriptedReply):
        if produced.tool_calls and not allowed:
            return ScriptedReply(produced.text or "I cannot use tools now.")
        return produced
    return ScriptedReply(produced)


async def stream_answer(
    fake: FakeProvider,
    request: web.Request,
    head: dict[str, Any],
    scripted: ScriptedReply,
    usage: dict[str, int] | None,
) -> web.StreamResponse:
    text = scripted.text
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)

    async def send(choices: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
        chunk = {
            **head,
            "object": "chat.completion.chunk",
            "choices": choices,
            **(extra or {}),
        }
        await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

    for _ in range(fake.keepalive_comments):
        await response.write(b": OPENROUTER PROCESSING\n\n")
    await send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    await fake._stall(request)
    for piece in words(scripted.reasoning):
        await asyncio.sleep(fake.chunk_delay)  # thinking streams at the answer's pace
        delta = {"content": None, scripted.reasoning_field: piece}
        await send([{"index": 0, "delta": delta, "finish_reason": None}])
    if scripted.tool_calls:
        for piece in words(text):
            await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        signature = signature_for(fake, head["model"])
        deltas = (
            tool_call_chunks(scripted.tool_calls)
            if signature is None
            else gemini_tool_call_chunks(scripted.tool_calls, signature)
        )
        for delta in deltas:
            await send([{"index": 0, "delta": delta, "finish_reason": None}])
        # Gemini 3 often ends a tool-call step with "stop".
        finish = "tool_calls" if signature is None else "stop"
        await send([{"index": 0, "delta": {}, "finish_reason": finish}])
        if usage is not None:
            await send([], {"usage": usage})
        return await end_stream(fake, response)
    for n, piece in enumerate(words(text)):
        if fake.drop_after_chunks is not None and n >= fake.drop_after_chunks:
            assert request.transport is not None
            request.transport.close()
            return response
        if fake.cut_after_chunks is not None and n >= fake.cut_after_chunks:
            await response.write_eof()  # a clean end of body, mid-answer
            return response
        if fake.error_after_chunks is not None and n >= fake.error_after_chunks:
            error = {
                "code": fake.stream_error_code,
                "message": "Provider returned error: upstream disconnected",
            }
            await send(
                [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                {"provider": "fake", "error": error},
            )
            await response.write_eof()
            return response
        if fake.chunk_delay:
            await asyncio.sleep(fake.chunk_delay)
        await send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    await send([{"index": 0, "delta": {}, "finish_reason": scripted.finish_reason}])
    if usage is not None:
        await send([], {"usage": usage})
    return await end_stream(fake, response)


def signature_for(fake: FakeProvider, model: str) -> str | None:
    """A new thought signature (remembered as issued) for a Gemini model; else None."""
    if model not in fake.gemini_tool_models:
        return None
    signature = new_thought_signature()
    fake._thought_signatures.add(signature)
    return signature


async def end_stream(fake: FakeProvider, response: web.StreamResponse) -> web.StreamResponse:
    if not fake.omit_done:
        await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response
