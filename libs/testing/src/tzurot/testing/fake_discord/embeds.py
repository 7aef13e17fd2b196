"""Discord's limits on the embeds a message carries, as the fake enforces them on every route
that sends or edits one (Create Message, Execute Webhook, Edit Webhook Message, interaction
responses, follow-ups and edits of the original).

Written from discord-api-docs resources/message.mdx:

- "Create Message", "Edit Message" (`embeds`: "Up to 10 `rich` embeds (up to 6000
  characters)"), resources/webhook.mdx "Execute Webhook" ("array of up to 10 embed objects").
- "Embed Limits": title 256 characters, description 4096, up to 25 fields, a field's name 256
  and value 1024, footer.text 2048, author.name 256; "the combined sum of characters in all
  `title`, `description`, `field.name`, `field.value`, `footer.text`, and `author.name`
  fields across all embeds attached to a message must not exceed 6000 characters. Violating
  any of these constraints will result in a `Bad Request` response." Leading and trailing
  whitespace is not counted ("they are trimmed automatically").
- "Embed Field Structure", "Embed Footer Structure", "Embed Author Structure": a field's
  `name` and `value`, a footer's `text` and an author's `name` are required (not marked `?`).

The answer is 400 50035 Invalid Form Body with the field's path (reference.mdx "Error
Messages"); the inner codes are Discord's as its answers are on record: BASE_TYPE_MAX_LENGTH
("Must be N or fewer in length."), BASE_TYPE_REQUIRED, and MAX_EMBED_SIZE_EXCEEDED ("Embed
size exceeds maximum size of 6000") at `embeds` for the total.
"""

from __future__ import annotations

from tzurot.testing.fake_discord.command_rules import FormErrors, Path
from tzurot.testing.fake_discord.rules import MAX_EMBEDS
from tzurot.testing.fake_discord.wire import Json

EMBED_TOTAL_LIMIT = 6000
MAX_FIELDS = 25
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_TEXT_LIMIT = 2048
AUTHOR_NAME_LIMIT = 256


def _max_length(errors: FormErrors, path: Path, limit: int) -> None:
    errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _text(
    errors: FormErrors, path: Path, value: object, limit: int, *, required: bool = False
) -> int:
    """Checks one counted text; returns the characters it adds to the message's total."""
    if value is None or (required and isinstance(value, str) and not value.strip()):
        if required:
            errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
        return 0
    if not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Could not interpret value as string.")
        return 0
    size = len(value.strip())
    if size > limit:
        _max_length(errors, path, limit)
    return size


def _embed(errors: FormErrors, path: Path, embed: Json) -> int:
    """One embed's limits; returns its counted characters."""
    total = _text(errors, (*path, "title"), embed.get("title"), TITLE_LIMIT)
    total += _text(errors, (*path, "description"), embed.get("description"), DESCRIPTION_LIMIT)
    footer, author = embed.get("footer"), embed.get("author")
    if isinstance(footer, dict):
        total += _text(
            errors, (*path, "footer", "text"), footer.get("text"), FOOTER_TEXT_LIMIT, required=True
        )
    if isinstance(author, dict):
        total += _text(
            errors, (*path, "author", "name"), author.get("name"), AUTHOR_NAME_LIMIT, required=True
        )
    fields = embed.get("fields") or []
    if len(fields) > MAX_FIELDS:
        _max_length(errors, (*path, "fields"), MAX_FIELDS)
    for n, item in enumerate(fields):
        where = (*path, "fields", n)
        if not isinstance(item, dict):
            errors.add(where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            continue
        total += _text(errors, (*where, "name"), item.get("name"), FIELD_NAME_LIMIT, required=True)
        total += _text(
            errors, (*where, "value"), item.get("value"), FIELD_VALUE_LIMIT, required=True
        )
    return total


def embeds_errors(errors: FormErrors, path: Path, embeds: object) -> None:
    """Adds to `errors` what Discord refuses in a message's `embeds` (at `path`)."""
    if not embeds:
        return
    if not isinstance(embeds, list):
        errors.add(path, "BASE_TYPE_ARRAY", "Could not interpret value as array.")
        return
    if len(embeds) > MAX_EMBEDS:
        _max_length(errors, path, MAX_EMBEDS)
        return
    total = 0
    for n, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            errors.add(
                (*path, n), "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType"
            )
            continue
        total += _embed(errors, (*path, n), embed)
    if total > EMBED_TOTAL_LIMIT:
        errors.add(
            path,
            "MAX_EMBED_SIZE_EXCEEDED",
            f"Embed size exceeds maximum size of {EMBED_TOTAL_LIMIT}",
        )


def embeds_error(body: Json) -> Json | None:
    """Discord's 400 body for the `embeds` of a message request, else None."""
    errors = FormErrors()
    embeds_errors(errors, ("embeds",), body.get("embeds"))
    return errors.body() if errors else None
