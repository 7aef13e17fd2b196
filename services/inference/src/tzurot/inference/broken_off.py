"""What an answer's round the provider broke off was billed: Tzurot's estimate.

A provider bills the prompt it read and what it generated, also when its stream then breaks
(the connection dropped or went idle, an error event mid-answer, a body that ended before
the finish); its usage chunk comes last, so its own count never came. Such a round is
estimated with the model's tokenizer (tokens.py, as the prompt's budget is): the prompt's
messages as sent (their text, IMAGE_TOKENS per image, each skill call's name and arguments;
not the tool schemas, nor what the provider adds), and the text, reasoning and tool calls
(each call's name and the arguments streamed so far) received.
The estimate is reported paid and not delivered (UsageSpent, failed) with `estimated` set.
The same count of each request's prompt goes out once the provider began answering it (its
first event: PromptSent), for the gateway to estimate a reply cancelled before any report
came.
A helper model's call (an image description, a transcript's clean-up, fact extraction) that
failed once its request went out is estimated the same way (`helper_cut_off`), under its own
request_type: one the provider began answering, or one it left unanswered past the time
limit (NoAnswerInTime: it may be at work, and billing); never one refused or never sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from tzurot.inference.domain import PaidCall, PromptSent, TokenUsage, UsageSpent
from tzurot.inference.prompt import IMAGE_TOKENS, ChatMessage, message_text
from tzurot.inference.tokens import TokenCounter


def prompt_tokens(messages: Sequence[ChatMessage], counter: TokenCounter) -> int:
    """The tokens of a request's messages, counted as the prompt's budget counts them."""
    total = 0
    for message in messages:
        total += counter.count_message(message_text(message))
        content = message["content"]
        if isinstance(content, list):
            total += IMAGE_TOKENS * sum(1 for part in content if part.get("type") == "image_url")
        for call in message.get("tool_calls", ()):
            function = call.get("function") or {}
            total += counter.count(f"{function.get('name', '')}{function.get('arguments', '')}")
    return total


def broken_off_usage(
    provider: str, model: str, messages: Sequence[ChatMessage], received: Sequence[str]
) -> UsageSpent:
    """The round's estimated usage, as the answer's own calls (request_type ""): the prompt
    of `messages`, and the text, reasoning and tool calls' text `received` before the stream
    broke."""
    counter = TokenCounter(model)
    usage = TokenUsage(prompt_tokens(messages, counter), counter.count("".join(received)))
    return UsageSpent((PaidCall("", provider, model, usage, estimated=True),), failed=True)


def prompt_sent(provider: str, model: str, messages: Sequence[ChatMessage]) -> PromptSent:
    """A request going out to the provider, with its prompt's estimated tokens."""
    return PromptSent(provider, model, prompt_tokens(messages, TokenCounter(model)))


def helper_cut_off(
    request_type: str,
    provider: str,
    model: str,
    messages: Sequence[ChatMessage],
    received: Sequence[str],
    *,
    began: bool,
    unanswered: bool,
) -> PaidCall | None:
    """What a helper model's call that failed may have been billed, estimated (its prompt,
    and what it `received` before it broke); None when nobody billed it. `began`: the
    provider sent an event of its answer; `unanswered`: the request went out and no answer
    came in time (retries.NoAnswerInTime: the provider may be at work, and billing). Neither:
    it was refused or never sent."""
    if not began and not unanswered:
        return None
    counter = TokenCounter(model)
    usage = TokenUsage(prompt_tokens(messages, counter), counter.count("".join(received)))
    return PaidCall(request_type, provider, model, usage, estimated=True)
