"""A MODAL callback's data as Discord checks it (400 50035, `errors` at `data.…`).

From discord-api-docs:
- interactions/receiving-and-responding.mdx "Modal": `custom_id` 1-100 characters, `title`
  at most 45, 1-5 `components`.
- components/reference.mdx "Text Input Structure" (L495-506): `custom_id` 1-100 characters,
  `style` 1 (Short) or 2 (Paragraph), `min_length` 0-4000, `max_length` 1-4000, `value` at
  most 4000 characters, `placeholder` at most 100. Its `label` "is deprecated in favor of
  `label` and `description` on the Label component" (L510), whose `label` is at most 45
  characters and `description` at most 100 ("Label Structure", L2011-2019): the fake holds
  the deprecated field to the Label's 45 as well.
- A text input sits in an Action Row (deprecated, as discord.py still sends it, L98) or in a
  Label (type 18, its `component`).

The codes and messages are Discord's form errors as the rest of the fake words them
(BASE_TYPE_MAX_LENGTH, BASE_TYPE_BAD_LENGTH; for numbers BASE_TYPE_MIN_VALUE and
BASE_TYPE_MAX_VALUE, "int value should be ...").
"""

from __future__ import annotations

from tzurot.testing.fake_discord.command_rules import FormErrors, Path
from tzurot.testing.fake_discord.wire import Json

MODAL_TITLE_LIMIT = 45
CUSTOM_ID_LIMIT = 100
MODAL_COMPONENTS = (1, 5)
ACTION_ROW, TEXT_INPUT, LABEL = 1, 4, 18
TEXT_INPUT_STYLES = {1, 2}
INPUT_LIMIT = 4000
PLACEHOLDER_LIMIT = 100
LABEL_LIMIT = 45
LABEL_DESCRIPTION_LIMIT = 100


def length_error(errors: FormErrors, path: Path, value: object, low: int, high: int) -> None:
    """A required string of `low` to `high` characters, in Discord's words."""
    if value is None:
        errors.add(path, "BASE_TYPE_REQUIRED", "This field is required")
    elif not isinstance(value, str):
        errors.add(path, "BASE_TYPE_STRING", "Could not interpret value as string.")
    elif low == 0 and len(value) > high:
        errors.add(path, "BASE_TYPE_MAX_LENGTH", f"Must be {high} or fewer in length.")
    elif low > 0 and not low <= len(value) <= high:
        errors.add(path, "BASE_TYPE_BAD_LENGTH", f"Must be between {low} and {high} in length.")


def _optional_text(errors: FormErrors, path: Path, value: object, high: int) -> None:
    if value is not None:
        length_error(errors, path, value, 0, high)


def _optional_int(errors: FormErrors, path: Path, value: object, low: int, high: int) -> None:
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        errors.add(path, "NUMBER_TYPE_COERCE", f'Value "{value}" is not int.')
    elif value < low:
        errors.add(
            path, "BASE_TYPE_MIN_VALUE", f"int value should be greater than or equal to {low}."
        )
    elif value > high:
        errors.add(
            path, "BASE_TYPE_MAX_VALUE", f"int value should be less than or equal to {high}."
        )


def _text_input_errors(errors: FormErrors, path: Path, text_input: Json) -> None:
    length_error(errors, (*path, "custom_id"), text_input.get("custom_id"), 1, CUSTOM_ID_LIMIT)
    style = text_input.get("style")
    if style not in TEXT_INPUT_STYLES:
        errors.add(
            (*path, "style"), "BASE_TYPE_CHOICES", f"Value must be one of {TEXT_INPUT_STYLES}."
        )
    _optional_int(errors, (*path, "min_length"), text_input.get("min_length"), 0, INPUT_LIMIT)
    _optional_int(errors, (*path, "max_length"), text_input.get("max_length"), 1, INPUT_LIMIT)
    _optional_text(errors, (*path, "value"), text_input.get("value"), INPUT_LIMIT)
    _optional_text(errors, (*path, "placeholder"), text_input.get("placeholder"), PLACEHOLDER_LIMIT)
    _optional_text(errors, (*path, "label"), text_input.get("label"), LABEL_LIMIT)


def _component_errors(errors: FormErrors, path: Path, component: object) -> None:
    """A modal's component: the text inputs in it, wherever they sit, checked."""
    if not isinstance(component, dict):
        errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    kind = component.get("type")
    if kind == ACTION_ROW:
        for n, child in enumerate(component.get("components") or []):
            _component_errors(errors, (*path, "components", n), child)
    elif kind == LABEL:
        length_error(errors, (*path, "label"), component.get("label"), 0, LABEL_LIMIT)
        _optional_text(
            errors, (*path, "description"), component.get("description"), LABEL_DESCRIPTION_LIMIT
        )
        _component_errors(errors, (*path, "component"), component.get("component"))
    elif kind == TEXT_INPUT:
        _text_input_errors(errors, path, component)


def modal_errors(errors: FormErrors, data: Json) -> None:
    """A MODAL callback's `data`: its own fields and its text inputs."""
    length_error(errors, ("data", "custom_id"), data.get("custom_id"), 1, CUSTOM_ID_LIMIT)
    length_error(errors, ("data", "title"), data.get("title"), 0, MODAL_TITLE_LIMIT)
    components = data.get("components")
    low, high = MODAL_COMPONENTS
    if components is None:
        errors.add(("data", "components"), "BASE_TYPE_REQUIRED", "This field is required")
        return
    if not isinstance(components, list) or not low <= len(components) <= high:
        errors.add(
            ("data", "components"),
            "BASE_TYPE_BAD_LENGTH",
            f"Must be between {low} and {high} in length.",
        )
        return
    for n, component in enumerate(components):
        _component_errors(errors, ("data", "components", n), component)
