"""What a reply cancelled mid-answer was billed, as the gateway estimates it.

When the client cancels its Generate (or this gateway stops), the gateway cancels its stream
from inference, and the provider's call with it: the provider bills what it had generated,
but inference can send nothing more on a closed stream (no ReplyFinished, no UsageSpent).
The gateway relayed the answer's text, so it estimates the part it saw: output tokens from
the characters relayed since inference last reported the answer's usage (about four a
token), input 0 (the prompt's count comes only with ReplyFinished's report, which never
came; the gateway holds no estimate of it). A failed, estimated usage row (Usage.estimated),
so `/usage` shows what was paid; a floor, as reasoning and skill rounds are never relayed.
So too when inference's stream ends in an error it could not report first (inference
restarting, the gateway's deadline, a run that lost its job): its own failures report their
usage before the error, which resets the count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tzurot.gateway.domain import Usage, UsageSpent

CHARACTERS_PER_TOKEN = 4


@dataclass
class RelayedAnswer:
    """The answer's characters relayed whose usage no report carries yet."""

    characters: int = 0

    def relayed(self, text: str) -> None:
        self.characters += len(text)

    def reported(self, spent: UsageSpent) -> None:
        """Inference reported the answer's own calls (a round broken off, estimated; a failed
        reply's rounds): what was relayed before is counted there."""
        if spent.failed and any(not paid.request_type for paid in spent.paid):
            self.characters = 0

    def estimate(self, provider: str, model: str) -> Usage | None:
        """The cancelled answer's usage; None when nothing of it was relayed (the provider
        had not begun answering, or every part of it is reported already)."""
        if not self.characters:
            return None
        output = math.ceil(self.characters / CHARACTERS_PER_TOKEN)
        return Usage(provider, model, 0, output, estimated=True)
