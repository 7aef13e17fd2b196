"""Precompiled statements: the same rows as `conn.execute`, values bound in the compiled order."""

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, insert

from tzurot.db.compiled import Precompiled
from tzurot.db.engine import create_engine
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

_meta = sa.MetaData()
_things = sa.Table(
    "things",
    _meta,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("tags", ARRAY(sa.Text), nullable=False),
    sa.Column("doc", JSONB),
    sa.Column("status", sa.Text, nullable=False),
)


def _upsert() -> sa.Executable:
    stmt = insert(_things).values(
        id=sa.bindparam("id", type_=_things.c.id.type),
        name=sa.bindparam("name", type_=sa.Text),
        tags=sa.bindparam("tags", type_=_things.c.tags.type),
        doc=sa.bindparam("doc", type_=JSONB),
        status="new",  # a value the statement fixes itself
    )
    return stmt.on_conflict_do_update(
        index_elements=[_things.c.id],
        set_={"name": stmt.excluded.name, "status": "renamed"},
        where=_things.c.name != stmt.excluded.name,
    ).returning(*_things.c)


async def test_rows_and_values_match_the_orm_path(fresh_database: DatabaseFactory) -> None:
    engine = create_engine(fresh_database())
    upsert = Precompiled(_upsert())
    thing = str(uuid.uuid4())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_meta.create_all)
            params = {"id": thing, "name": "a", "tags": ["x", "y"], "doc": {"k": [1, 2]}}
            first = (await upsert.execute(conn, params)).one()._mapping
            again = (await upsert.execute(conn, params)).one_or_none()  # unchanged: no row
            renamed = (await upsert.execute(conn, {**params, "name": "b"})).one()._mapping
            stored = (await conn.execute(sa.select(_things))).one()._mapping
    finally:
        await engine.dispose()

    assert str(first["id"]) == thing
    assert (first["name"], first["tags"], first["doc"], first["status"]) == (
        "a",
        ["x", "y"],
        {"k": [1, 2]},
        "new",
    )
    assert again is None
    assert (renamed["name"], renamed["status"]) == ("b", "renamed")
    assert dict(stored) == {**dict(renamed), "id": thing}


def test_an_in_list_is_refused() -> None:
    stmt = sa.select(_things).where(_things.c.status.in_(["new", "renamed"]))
    with pytest.raises(ValueError, match="in_"):
        Precompiled(stmt)
