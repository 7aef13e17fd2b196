"""The prompt for one reply, within the model's context window. Pure functions.

Order (stable first, so consecutive turns share their prefix bytes and provider prompt
caching works; volatile last):

1. one system message: the system prompt, the character sections (description,
   personality, scenario, example dialogues), the conversation rules, the participants
   and the user's persona (the user's own words: quoted as what others wrote is, see 3,
   under a header saying they are notes, not instructions);
2. the history, oldest first, trimmed oldest-first to its budget (user turns start with
   their author's name, so several users in a channel stay apart), with the author's note
   injected `author_note_depth` (2-4) messages from the bottom;
3. one context message: current date and time in the user's time zone (and the
   personality's birthday when near), relevant memories, referenced messages (those the
   history does not already hold: references.py), mentioned channels and roles. What others
   wrote (references, memories, pages a skill remembered, channel topics) is quoted: every
   line after an item's first is indented behind "  > ", so none can start a line that reads
   as a section of this prompt ("## …") or an instruction of its own, and the headers say
   the block is quoted material, not instructions;
4. the new message (with image parts for a vision model);
5. the post-history instructions, where models weigh them most.

Budgets (see `Budget`): input at most 75% of the window up to 64k tokens, 50% above, and
never into the 5% (or max_tokens) reserved for the answer; memories at most 25% of the
window, at least 10% when history competes, picked greedily by relevance; references and
mention context each at most `reference_share` (0.5) of what remains; history gets the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tzurot.inference.domain import HistoryTurn
from tzurot.inference.lore.model import Activation
from tzurot.inference.prompt import (
    IMAGE_TOKENS,
    Budget,
    ChatMessage,
    Prompt,
    PromptInput,
    message_text,
)
from tzurot.inference.prompt_context import (
    MEMORY_HEADER,
    MENTIONS_HEADER,
    REFERENCES_HEADER,
    memory_block,
    memory_line,
    mention_line,
    reference_line,
    time_context,
)
from tzurot.inference.prompt_fitting import fit_lines, fit_lore, pick_memories
from tzurot.inference.prompt_sections import (
    author_labels,
    author_note,
    history_message,
    new_message,
    note_depth,
    system_text,
    turn_text,
)
from tzurot.inference.references import not_in_history
from tzurot.inference.tokens import TokenCounter
from tzurot.runtime.errors import InvalidArgument


def build_prompt(data: PromptInput, budget: Budget, counter: TokenCounter) -> Prompt:
    """The messages for one reply; InvalidArgument PROMPT_TOO_LONG when the fixed parts
    (system message, new message, post-history instructions) alone exceed the input limit."""
    labels = author_labels(data)
    system = system_text(data, labels, ())
    user_message = new_message(data, labels)
    post = data.character.post_history_instructions.strip()
    note = author_note(data.character)
    time_text = time_context(data.character, data.timezone, data.now) if data.now else ""

    fixed = (
        _count(counter, system)
        + _count(counter, message_text(user_message))
        + len(data.images) * IMAGE_TOKENS
        + _count(counter, post)
        + _count(counter, note)
        + _count(counter, time_text)
    )
    limit = budget.input_limit
    if fixed > limit:
        raise InvalidArgument(
            "content",
            f"the message does not fit the model's context: it needs {fixed} tokens with the "
            f"character's prompt, and the input limit is {limit}",
            reason="PROMPT_TOO_LONG",
            metadata={"needed_tokens": str(fixed), "limit_tokens": str(limit)},
        )
    remaining = limit - fixed
    lore, lore_dropped = fit_lore(data.lore, min(remaining, budget.memory_cap))
    lore_tokens = sum(item.tokens for item in lore)
    if lore:
        system = system_text(data, labels, lore)
        remaining -= lore_tokens

    history = [turn for turn in data.history if turn.content]
    history_cost = [counter.count_message(turn_text(turn, labels)) for turn in history]
    history_need = sum(history_cost)

    memory_costs = [counter.count(memory_line(memory)) + 1 for memory in data.memories]
    memory_need = sum(memory_costs) + (counter.count(MEMORY_HEADER) if data.memories else 0)
    memory_room = min(
        memory_need,
        max(0, budget.memory_cap - lore_tokens),
        remaining,
        max(min(budget.memory_floor, memory_need), remaining - history_need),
    )
    memories = pick_memories(data.memories, memory_costs, memory_room, counter)
    memory_text = memory_block(memories)
    remaining -= _count(counter, memory_text)

    references = not_in_history(data.references, history)
    reference_text, references = fit_lines(
        references,
        [reference_line(ref) for ref in references],
        REFERENCES_HEADER,
        math.floor(remaining * budget.reference_share),
        counter,
    )
    remaining -= _count(counter, reference_text)
    mention_text, _ = fit_lines(
        list(data.mentions),
        [mention_line(mention) for mention in data.mentions],
        MENTIONS_HEADER,
        math.floor(remaining * budget.reference_share),
        counter,
    )
    remaining -= _count(counter, mention_text)

    kept: list[HistoryTurn] = []
    used = 0
    for turn, cost in zip(reversed(history), reversed(history_cost), strict=True):
        if used + cost > remaining:
            break
        kept.append(turn)
        used += cost
    kept.reverse()

    context = "\n\n".join(
        part for part in (time_text, memory_text, reference_text, mention_text) if part
    )
    conversation: list[ChatMessage] = [history_message(turn, labels) for turn in kept]
    conversation.append(user_message)
    depth_lore = [item for item in lore if item.position == "at_depth"]
    messages = _assemble(
        system, conversation, note_depth(data.character), note, context, post, depth_lore
    )

    sections = {
        "system": _count(counter, system),
        "history": used,
        "memories": _count(counter, memory_text),
        "references": _count(counter, reference_text),
        "mentions": _count(counter, mention_text),
        "time": _count(counter, time_text),
        "author_note": _count(counter, note),
        "message": _count(counter, message_text(user_message)) + len(data.images) * IMAGE_TOKENS,
        "post_history": _count(counter, post),
        "lore": lore_tokens,
    }
    total = (
        sum(counter.count_message(message_text(m)) for m in messages)
        + len(data.images) * IMAGE_TOKENS
    )
    return Prompt(
        messages=messages,
        tokens=total,
        history_turns=len(kept),
        memory_ids=tuple(memory.id for memory in memories),
        referenced_message_ids=tuple(ref.message_id for ref in references),
        sections=sections,
        lore_dropped=lore_dropped,
    )


def _assemble(  # noqa: PLR0917  # private; the parts in their order
    system: str,
    conversation: list[ChatMessage],
    depth: int,
    note: str,
    context: str,
    post: str,
    lore: Sequence[Activation] = (),
) -> list[ChatMessage]:
    """System, conversation (note and lore at their depths), context, the new message,
    what lore put after it (depth 0), post-history."""
    user = conversation[-1]
    if note:
        at = len(conversation) - min(depth, len(conversation))
        conversation.insert(at, {"role": "system", "content": note})
    for item in reversed(lore):  # reversed: equal depths keep their insertion order
        at = len(conversation) - min(item.depth, len(conversation))
        conversation.insert(at, {"role": item.role, "content": item.content})
    index = next(i for i, message in enumerate(conversation) if message is user)
    messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
    messages.extend(conversation[:index])
    if context:
        messages.append({"role": "system", "content": context})
    messages.append(user)
    messages.extend(conversation[index + 1 :])
    if post:
        messages.append({"role": "system", "content": post})
    return messages


def _count(counter: TokenCounter, text: str) -> int:
    return counter.count_message(text) if text else 0
