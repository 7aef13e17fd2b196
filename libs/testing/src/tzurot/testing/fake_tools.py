"""The fake provider's tool calling and image output, written from OpenAI's and OpenRouter's docs.

Rules a vendor enforces and the fake refuses the same way (HTTP 400 with the vendor's wording):
- `tools`: at most 128, each `{"type": "function", "function": {"name", "parameters"}}`, the
  name matching `^[a-zA-Z0-9_-]{1,64}$`, `parameters` a JSON-schema object;
- `tool_choice` and `parallel_tool_calls` only together with `tools`; `tool_choice` is "none",
  "auto", "required" or a function that `tools` declares;
- an assistant message with `tool_calls` (arguments as a JSON string) must be followed by one
  `tool` message per call id, and a `tool` message must answer such a call.

Tool calls stream as OpenAI streams them: the first delta of a call carries its index, id,
type and name with empty arguments, later deltas carry pieces of the arguments string.
Gemini's OpenAI-compatible endpoint streams them its own way (`gemini_tool_call_chunks`):
each call whole in one delta, without `index`, and the first call of a step carries
`extra_content.google.thought_signature`; Gemini 3 refuses (HTTP 400, its list-shaped error
body) a request whose current turn (after the last user message) has a tool-call step whose
first call lacks that signature, or carries one it never issued
(`check_thought_signatures`).
Images: chat completions with `modalities` containing "image" answer `message.images` (data
URLs, as OpenRouter does): one image per answer, each request its own (OpenRouter documents no
`n` for image output; an `n` sent is not honoured), without text when only the image is asked
(which models may be asked what, and `image_config`: `fake_provider_images.py`).
`/v1/images/generations` keeps OpenAI's per-model rules (`image_rules`): sizes (gpt-image-1:
1024x1024, 1536x1024, 1024x1536, auto; dall-e-2: 256x256, 512x512, 1024x1024; dall-e-3:
1024x1024, 1792x1024, 1024x1792), `n` (dall-e-3 only 1, else up to 10) and `response_format`
(url or b64_json, for DALL-E only: the GPT image models refuse it as an unknown parameter and
always answer base64; DALL-E answers a URL unless asked for b64_json). Refusals are OpenAI's
400 bodies ("The size is not supported by this model.", code `invalid_size`; "You must provide
n=1 for this model.", code null; "Unknown parameter: 'response_format'.", code
`unknown_parameter`). Another image model (`fake/draw`) keeps gpt-image-1's rules. A URL answer
points at an `.invalid` host: nothing serves it.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

MAX_TOOLS = 128
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_IMAGES_PER_REQUEST = 10


@dataclass(frozen=True)
class ImageModelRules:
    """What OpenAI's `/images/generations` accepts from one model."""

    sizes: tuple[str, ...]
    max_n: int = MAX_IMAGES_PER_REQUEST
    dall_e: bool = False
    """Takes `response_format` (url, the default, or b64_json); the GPT image models refuse
    it and always answer base64."""


GPT_IMAGE_RULES = ImageModelRules(("1024x1024", "1536x1024", "1024x1536", "auto"))
DALL_E_2_RULES = ImageModelRules(("256x256", "512x512", "1024x1024"), dall_e=True)
DALL_E_3_RULES = ImageModelRules(("1024x1024", "1792x1024", "1024x1792"), max_n=1, dall_e=True)


def image_rules(model: str) -> ImageModelRules:
    """The model's rules; any model not DALL-E's keeps gpt-image-1's."""
    if model.startswith("dall-e-3"):
        return DALL_E_3_RULES
    if model.startswith("dall-e-2"):
        return DALL_E_2_RULES
    return GPT_IMAGE_RULES


@dataclass(frozen=True)
class ToolCallSpec:
    """One call a scripted model makes: a tool's name and its arguments."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None
    """Sent instead of `arguments` as JSON (to test arguments that are not valid JSON)."""

    def arguments_json(self) -> str:
        return self.raw_arguments if self.raw_arguments is not None else json.dumps(self.arguments)


def tools_allowed(body: dict[str, Any]) -> bool:
    """Whether the model may call a tool in this request."""
    return bool(body.get("tools")) and body.get("tool_choice", "auto") != "none"


def check_tools(body: dict[str, Any]) -> str | None:  # noqa: PLR0911, PLR0912  # one rule per branch
    """The vendor's 400 message for a malformed tool request; None when it is fine."""
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid type for 'tools': expected an array."
        if len(tools) > MAX_TOOLS:
            return (
                f"Invalid 'tools': array too long. Expected an array with maximum length "
                f"{MAX_TOOLS}, but got an array with length {len(tools)} instead."
            )
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                return f"Invalid value for 'tools[{i}].type': expected 'function'."
            function = tool.get("function")
            if not isinstance(function, dict):
                return f"Missing required parameter: 'tools[{i}].function'."
            name = function.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
                return (
                    f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                    "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
                )
            parameters = function.get("parameters", {"type": "object"})
            if not isinstance(parameters, dict) or parameters.get("type") != "object":
                return (
                    f"Invalid schema for function '{name}': schema must be a JSON Schema "
                    "of 'type: \"object\"'."
                )
            names.add(name)
    for option in ("tool_choice", "parallel_tool_calls"):
        if option in body and not tools:
            return (
                f"Invalid value for '{option}': '{option}' is only allowed when 'tools' "
                "are specified."
            )
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice not in ("none", "auto", "required"):
        return "Invalid value for 'tool_choice': expected one of none, auto or required."
    if isinstance(choice, dict):
        chosen = (choice.get("function") or {}).get("name")
        if chosen not in names:
            return (
                f"Invalid value for 'tool_choice': no function named '{chosen}' was "
                "specified in the 'tools' parameter."
            )
    return _check_sequence(body.get("messages") or [])


def _check_sequence(messages: list[Any]) -> str | None:
    pending: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                return (
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'."
                )
            if not isinstance(message.get("content"), str | list):
                return "Invalid type for 'messages.content': expected a string or an array."
            pending.remove(call_id)
            continue
        if pending:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}"
            )
        if role == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                arguments = (call.get("function") or {}).get("arguments")
                if not isinstance(arguments, str):
                    return (
                        "Invalid type for 'messages.tool_calls.function.arguments': "
                        "expected a string."
                    )
                pending.append(call.get("id"))
    if pending:
        return (
            "An assistant message with 'tool_calls' must be followed by tool messages "
            f"responding to each 'tool_call_id'. The following tool_call_ids did not have "
            f"response messages: {', '.join(pending)}"
        )
    return None


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def tool_call_chunks(calls: tuple[ToolCallSpec, ...]) -> list[dict[str, Any]]:
    """The deltas of streamed tool calls: head (id, name), then argument pieces."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        head = {
            "index": index,
            "id": _call_id(),
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"role": "assistant", "content": None, "tool_calls": [head]})
        arguments = call.arguments_json()
        step = max(1, len(arguments) // 3 + 1)
        for start in range(0, len(arguments), step):
            piece = arguments[start : start + step]
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
    return deltas


def gemini_tool_call_chunks(
    calls: tuple[ToolCallSpec, ...], signature: str
) -> list[dict[str, Any]]:
    """Gemini's deltas: one per call, whole, no `index`; the step's signature on the first."""
    deltas: list[dict[str, Any]] = []
    for n, call in enumerate(calls):
        entry: dict[str, Any] = {
            "id": f"function-call-{uuid.uuid4().int % 10**19}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json()},
        }
        if n == 0:
            entry["extra_content"] = {"google": {"thought_signature": signature}}
        deltas.append({"role": "assistant", "tool_calls": [entry]})
    return deltas


def new_thought_signature() -> str:
    return base64.b64encode(uuid.uuid4().bytes * 2).decode()


def check_thought_signatures(messages: list[Any], issued: set[str]) -> str | None:
    """Gemini 3's 400 message when the current turn's tool-call steps do not echo their
    signatures (on each step's first call); None when they do."""
    last_user = max(
        (n for n, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"),
        default=-1,
    )
    position = 0  # Gemini counts `contents`: system messages are not among them
    for n, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") == "system":
            continue
        position += 1
        calls = message.get("tool_calls")
        if n < last_user or message.get("role") != "assistant" or not calls:
            continue
        first = calls[0] if isinstance(calls[0], dict) else {}
        google = (first.get("extra_content") or {}).get("google") or {}
        signature = google.get("thought_signature") if isinstance(google, dict) else None
        if signature is None:
            name = (first.get("function") or {}).get("name")
            return (
                "Function call is missing a thought_signature in functionCall parts. This is "
                "required for tools to work correctly, and missing thought_signature may lead "
                f"to degraded model performance. Additional data, function call "
                f"`default_api:{name}` , position {position - 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
            )
        if signature not in issued:
            return "Corrupted thought signature."
    return None


def tool_call_message(
    text: str, calls: tuple[ToolCallSpec, ...], signature: str | None = None
) -> dict[str, Any]:
    """The non-streamed message; with `signature`, Gemini's on the first call."""
    tool_calls: list[dict[str, Any]] = [
        {
            "id": _call_id(),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json()},
        }
        for call in calls
    ]
    if signature is not None and tool_calls:
        tool_calls[0]["extra_content"] = {"google": {"thought_signature": signature}}
    return {"role": "assistant", "content": text or None, "tool_calls": tool_calls}


def tiny_png(seed: str, size: int = 8, *, pad_to: int = 0) -> bytes:
    """A real PNG (size x size, one colour from the seed), so clients can decode it; `pad_to`:
    made that many bytes long by a private ancillary chunk (decoders skip it)."""
    digest = zlib.crc32(seed.encode())
    rgb = bytes(((digest >> shift) & 0xFF) for shift in (16, 8, 0))
    raw = b"".join(b"\x00" + rgb * size for _ in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    start = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
    end = chunk(b"IEND", b"")
    padding = pad_to - len(start) - len(end) - 12  # a chunk's length, type and CRC
    if padding >= 0:
        start += chunk(b"paDd", bytes(padding))
    return start + end


def _prompt_of(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content)
    return ""


def image_reply(body: dict[str, Any], model: str, *, image_bytes: int = 0) -> dict[str, Any]:
    """OpenRouter's non-streamed answer of an image-output model: text plus the one image it
    drew (`image_bytes` long when set), a new one each request; `n` is not read (OpenRouter
    documents none for image output). Asked for the image alone, it writes no text."""
    modalities = body.get("modalities") or []
    image = tiny_png(f"{_prompt_of(body)}#{uuid.uuid4().hex}", pad_to=image_bytes)
    url = "data:image/png;base64," + base64.b64encode(image).decode()
    return {
        "id": f"gen-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Here is your image." if "text" in modalities else "",
                    "images": [{"type": "image_url", "image_url": {"url": url}}],
                },
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 1290, "total_tokens": 1300},
    }


def images_generations(
    body: dict[str, Any], models: set[str], *, image_bytes: int = 0
) -> tuple[int, dict[str, Any]]:
    """OpenAI's `/v1/images/generations`: (status, body or {message, code, param})."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return 400, {
            "message": "Missing required parameter: 'prompt'.",
            "code": "missing_required_parameter",
        }
    if len(prompt) > 32_000:
        return 400, {
            "message": "Invalid 'prompt': string too long.",
            "code": "string_above_max_length",
        }
    model = str(body.get("model", ""))
    if model not in models:
        return 404, {"message": f"The model `{model}` does not exist", "code": "model_not_found"}
    rules = image_rules(model)
    refusal = _image_refusal(body, rules)
    if refusal is not None:
        return 400, refusal
    n = int(body.get("n", 1))
    images = [tiny_png(f"{prompt}#{i}", pad_to=image_bytes) for i in range(n)]
    if rules.dall_e and body.get("response_format", "url") == "url":
        data = [
            {"url": f"https://images.fake-openai.invalid/img-{uuid.uuid4().hex}.png"}
            for _ in images
        ]
    else:
        data = [{"b64_json": base64.b64encode(image).decode()} for image in images]
    return 200, {"created": int(time.time()), "data": data, "usage": {"total_tokens": 100 * n}}


def _image_refusal(body: dict[str, Any], rules: ImageModelRules) -> dict[str, Any] | None:
    """OpenAI's 400 for a parameter the model does not take; None when all are fine."""
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= MAX_IMAGES_PER_REQUEST:
        return {
            "message": "Invalid 'n': expected an integer between 1 and 10.",
            "code": "integer_out_of_range",
            "param": "n",
        }
    if n > rules.max_n:  # OpenAI sends this one with code and param null
        return {"message": "You must provide n=1 for this model.", "code": None, "param": None}
    if body.get("size", rules.sizes[0]) not in rules.sizes:  # the default is always allowed
        return {
            "message": "The size is not supported by this model.",
            "code": "invalid_size",
            "param": None,
        }
    if "response_format" in body:
        if not rules.dall_e:
            return {
                "message": "Unknown parameter: 'response_format'.",
                "code": "unknown_parameter",
                "param": "response_format",
            }
        if body["response_format"] not in ("url", "b64_json"):
            return {
                "message": f"Invalid value: '{body['response_format']}'. Supported values "
                "are: 'url' and 'b64_json'.",
                "code": "invalid_value",
                "param": "response_format",
            }
    return None
