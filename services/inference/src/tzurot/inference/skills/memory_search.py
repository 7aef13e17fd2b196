"""memory_search: the personality looks through its own memories of this user on purpose.

The same scope as automatic retrieval (this personality, this user plus its shared lore,
nothing newer than the prompt's history), through memory's QueryMemories. Stealth: the
search and its results inform this answer only and are never kept in history.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tzurot.inference.skills.base import MemorySearch, SkillContext, SkillOutput


class MemorySearchSkill:
    name = "memory_search"
    description = (
        "Search your own long-term memories of this person (and your shared knowledge) for "
        "something specific you may have been told before. Returns the best matches."
    )
    parameters: Mapping[str, Any] = {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "What to look for, in a few words.",
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10,
                "description": "How many memories at most (default 5).",
            },
        },
        "required": ["query"],
        "additionalProperties": False,
    }
    stealth = True
    auto_memorize = False
    timeout = 10.0
    min_seconds = 0.0

    def __init__(self, memories: MemorySearch) -> None:
        self._memories = memories

    async def run(self, args: Mapping[str, Any], ctx: SkillContext) -> SkillOutput:
        found = await self._memories.relevant_memories(
            personality_id=ctx.personality_id,
            user_id=ctx.user_id,
            query=str(args["query"]),
            limit=int(args.get("limit", 5)),
            threshold=ctx.memory_threshold,
            exclude_after=ctx.exclude_after,
        )
        if not found:
            return SkillOutput(text="No memories match.", summary="no matches")
        lines = [f"- {item.text}" for item in found]
        return SkillOutput(text="\n".join(lines), summary=f"{len(found)} memories")
