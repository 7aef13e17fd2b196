"""The room an answer has for the files its skills make (generated images).

An answer's files travel with its end (ReplyFinished, then gateway's GenerationFinished): one
gRPC message of at most MAX_MESSAGE_BYTES, less room for the text and the report. So an
answer carries at most `max_files` files and `max_bytes` of them together. A skill that makes
files (MakesFiles) is offered only while one more of its files fits, and a call of it starts
only when the most it can make fits beside what the answer already carries and what the other
calls of its round may make: no file is paid for and then dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from tzurot.inference.domain import GeneratedFile
from tzurot.inference.skills.base import MakesFiles, Skill, SkillError
from tzurot.inference.skills.registry import parse_arguments
from tzurot.runtime.grpc_options import MAX_MESSAGE_BYTES

log = structlog.get_logger(__name__)

MIB = 1024 * 1024
ANSWER_FILE_BYTES = MAX_MESSAGE_BYTES - MIB
"""All files of one answer together: the gRPC message that carries them, less 1 MiB for the
answer's text, footer and report."""


class FileRoom:
    def __init__(self, max_files: int, max_bytes: int) -> None:
        self._max_files, self._max_bytes = max_files, max_bytes
        self.files: list[GeneratedFile] = []
        self._held_files = self._held_bytes = 0
        """Room held for the calls of the running round (the most each can make)."""

    def offers(self, skill: Skill) -> bool:
        """Whether `skill` is worth offering: one more of its files would fit."""
        return not isinstance(skill, MakesFiles) or self._fits(1, skill.file_bytes)

    def hold(self, skill: Skill | None, arguments: str) -> bool:
        """Holds room for the most a call can make; False if that does not fit (the call is
        refused unstarted). A call whose arguments are invalid makes nothing (it fails
        before it pays)."""
        if skill is None or not isinstance(skill, MakesFiles):
            return True
        try:
            count = skill.most_files(parse_arguments(skill, arguments))
        except SkillError:
            return True
        if not self._fits(count, count * skill.file_bytes):
            return False
        self._held_files += count
        self._held_bytes += count * skill.file_bytes
        return True

    def refusal(self) -> str:
        return (
            f"this answer cannot carry more files (at most {self._max_files}, "
            f"{self._max_bytes / MIB:.3g} MiB together)"
        )

    def keep(self, rounds: Iterable[tuple[GeneratedFile, ...]]) -> None:
        """The round is over: its calls' files join the answer and held room is let go."""
        self._held_files = self._held_bytes = 0
        for made in rounds:
            for file in made:
                if self._fits(1, len(file.data)):
                    self.files.append(file)
                else:  # a skill made more than it said it could: a bug, not a user's loss
                    log.error("skills.file_dropped", filename=file.filename, size=len(file.data))

    def _fits(self, count: int, size: int) -> bool:
        used_bytes = sum(len(f.data) for f in self.files) + self._held_bytes
        return (
            len(self.files) + self._held_files + count <= self._max_files
            and used_bytes + size <= self._max_bytes
        )
