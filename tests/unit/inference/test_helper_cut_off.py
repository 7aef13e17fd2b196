"""A helper model's call (an image description, a transcript's clean-up, fact extraction)
that failed once its request went out may have been billed: `helper_cut_off` estimates it,
as a broken answer round is (its prompt, what it received), under the call's own
request_type; one the provider refused or that was never sent is billed to nobody."""

from __future__ import annotations

from tzurot.inference.broken_off import helper_cut_off, prompt_tokens
from tzurot.inference.domain import IMAGE_DESCRIPTION, TRANSCRIPT_CLEANUP, PaidCall, TokenUsage
from tzurot.inference.prompt import ChatMessage
from tzurot.inference.tokens import TokenCounter

MODEL = "openai/gpt-4o-mini"
MESSAGES: list[ChatMessage] = [
    {"role": "system", "content": "Clean up this transcript."},
    {"role": "user", "content": "um so I was thinking we could uh meet at noon"},
]


def test_a_call_broken_after_it_began_is_its_prompt_and_what_came() -> None:
    counter = TokenCounter(MODEL)
    paid = helper_cut_off(
        TRANSCRIPT_CLEANUP,
        "openrouter",
        MODEL,
        MESSAGES,
        ["So I was ", "thinking"],
        began=True,
        unanswered=False,
    )
    usage = TokenUsage(prompt_tokens(MESSAGES, counter), counter.count("So I was thinking"))
    assert paid == PaidCall(TRANSCRIPT_CLEANUP, "openrouter", MODEL, usage, estimated=True)


def test_a_call_unanswered_in_time_is_its_prompt() -> None:
    """Sent, and no answer before the time limit: the provider may be at work, billing."""
    image: list[ChatMessage] = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    paid = helper_cut_off(
        IMAGE_DESCRIPTION, "openrouter", MODEL, image, [], began=False, unanswered=True
    )
    assert paid is not None
    assert paid.usage == TokenUsage(prompt_tokens(image, TokenCounter(MODEL)), 0)
    assert paid.usage.input_tokens > 1000  # the image, as the prompt's budget counts it
    assert (paid.request_type, paid.estimated) == (IMAGE_DESCRIPTION, True)


def test_a_call_refused_or_never_sent_is_billed_to_nobody() -> None:
    assert (
        helper_cut_off(
            TRANSCRIPT_CLEANUP, "openrouter", MODEL, MESSAGES, [], began=False, unanswered=False
        )
        is None
    )
