"""How long the names commands take may be, declared on their options so that Discord itself
refuses a longer one (a string option otherwise takes up to 6000 characters): no name that
could never match reaches the gateway, and the user sees the limit as they type.

Used as an option's annotation (`personality: PersonalityName`); discord.py sends the bounds
as the option's `min_length` and `max_length`.
"""

from __future__ import annotations

from discord import app_commands

LONGEST_NAME = 80
"""The most characters a personality's display name, an alias or an LLM config's name has
(the gateway's `MAX_NAME`, counted with a leading '@'); a slug has 63 at most."""
LONGEST_PERSONALITY_NAME = 100
"""What naming a personality may take: its slug, display name or an alias, with an '@' and
spaces around it; also the most an autocomplete choice's value holds (what picking one sends)."""

PersonalityName = app_commands.Range[str, 1, LONGEST_PERSONALITY_NAME]
"""A personality, by slug, display name or alias (the gateway's name rules)."""
AliasName = app_commands.Range[str, 1, LONGEST_NAME]
"""An alias, given or named (the gateway refuses a longer one)."""
NewName = app_commands.Range[str, 1, LONGEST_NAME]
"""A name being given: a personality's display name, an LLM config's name."""
