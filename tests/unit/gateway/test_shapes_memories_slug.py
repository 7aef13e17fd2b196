"""A shapes.inc memory import names its personality by slug, as the configuration and
history imports do: a display name or a global alias of that text lands nowhere (review of
ca524c1, L4), so memories never go to another personality that only shares a name."""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.gateway.admin import shapes as shapes_admin
from tzurot.gateway.admin.base import Principal
from tzurot.gateway.domain import Personality
from tzurot.runtime.errors import NotFound

from .personality_support import personality

OPERATOR = Principal(user=None)
SAGE = personality("sage", "Sage Moon", "wise one", id="id-sage")


class Store:
    """find_personality as the catalog answers it: by slug, display name or global alias."""

    async def find_personality(self, name: str, **_: Any) -> Personality | None:
        return SAGE if name.lower() in ("sage", "sage moon", "wise one") else None


@pytest.fixture
def shapes(monkeypatch: pytest.MonkeyPatch) -> shapes_admin.ShapesAdmin:
    monkeypatch.setattr(shapes_admin, "read_memories", lambda _document: [])
    admin = object.__new__(shapes_admin.ShapesAdmin)
    admin._store = Store()  # type: ignore[assignment]
    return admin


@pytest.mark.parametrize("name", ["Sage Moon", "wise one", "Sage"])
async def test_a_name_or_alias_that_is_not_the_slug_finds_no_personality(
    shapes: shapes_admin.ShapesAdmin, name: str
) -> None:
    with pytest.raises(NotFound) as refused:
        await shapes.import_shapes_memories(OPERATOR, name, b"[]", {}, dry_run=False)
    assert refused.value.reason == "PERSONALITY_NOT_FOUND"


async def test_the_exact_slug_imports(shapes: shapes_admin.ShapesAdmin) -> None:
    batch = await shapes.import_shapes_memories(OPERATOR, "sage", b"[]", {}, dry_run=False)
    assert (batch.imported, batch.skipped) == (0, 0)
