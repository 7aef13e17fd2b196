"""What helper models read for a job's attachments, kept across the job's attempts.

A voice note is transcribed (and its transcript cleaned), an image described for a model
without vision, by models paid with the user's key, before the answer is asked for. Inference
sends each such reading as soon as it is paid for (`AttachmentRead`); the gateway records its
usage at once, one `usage_log` row per call with the call's kind as `request_type`, and keeps
its text on the job (`jobs.attachment_reads`). When the job runs again (the same message sent
again after an answer failed for a passing reason), its attachments go to inference with
those texts as their descriptions, and inference reads none of them again: nothing is paid
twice, and what was paid is in `/usage` even when no answer came of it.

An attachment is known by its URL without the query: Discord signs its CDN links with
expiring query parameters, while the path (channel, attachment id, file name) names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from urllib.parse import urlsplit

from tzurot.gateway.domain import Attachment


def read_key(url: str) -> str:
    """The attachment's key: its URL without query or fragment."""
    return urlsplit(url)._replace(query="", fragment="").geturl()


def with_reads(
    attachments: Iterable[Attachment], reads: Mapping[str, str]
) -> tuple[Attachment, ...]:
    """The attachments, those read on an earlier attempt with that text as description."""
    return tuple(
        replace(a, description=reads[read_key(a.url)])
        if not a.description and reads.get(read_key(a.url))
        else a
        for a in attachments
    )
