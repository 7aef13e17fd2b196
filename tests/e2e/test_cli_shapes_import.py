"""`tzurot import shapes` through the real console script, as an operator runs it against the
mesh (identity `cli`): a backup folder written as tests/e2e/test_shapes_import.py writes one,
with `--user-map` (a YAML file), `--alias` twice, `--owner` and `--history-channel` read from
the command line. What lands is read from the tables: the personality, its aliases (the
backup's and the command line's), its owner, the mapped users' memories and the chat history
in the channel given, on the mapped user, at its original times. A dry run first stores
nothing; a second import stores nothing again.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.e2e import Harness
from tzurot.testing.shapes_backup import ALICE, BASE_TS, BOB, shape_config, write_backup

pytestmark = pytest.mark.e2e

TZUROT = Path(sys.executable).parent / "tzurot"
"""The console script, as installed (what an operator types)."""
ALICE_DISCORD = "411111111111111111"
BOB_DISCORD = "422222222222222222"
OWNER_DISCORD = "433333333333333333"
LIGHTHOUSE = "700000000000000099"
AVATAR = "http://127.0.0.1:9/mira.png"
"""A private address: the CLI's download refuses it, and the URL is kept."""


async def tzurot(harness: Harness, *args: str, cwd: Path) -> tuple[int, str, str]:
    """The console script in a process, as `cli`, against the mesh's gateway."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TZUROT_")}
    env |= {
        "TZUROT_GATEWAY_ADDR": harness.mesh.gateway_addr,
        "TZUROT_CLI_TLS_DIR": str(harness.mesh.pki / "cli"),
        "COLUMNS": "120",
    }
    process = await asyncio.create_subprocess_exec(
        str(TZUROT),
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # no controlling terminal
    )
    out, err = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def landed(harness: Harness, slug: str) -> dict[str, Any]:
    """What the tables hold of personality `slug` (empty when there is none)."""
    engine = create_engine(harness.mesh.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.text(
                        "select p.id, p.display_name, p.avatar_url, u.platform_user_id as owner"
                        " from core.personalities p left join core.users u"
                        " on u.id = p.owner_user_id where p.slug = :slug"
                    ),
                    {"slug": slug},
                )
            ).one_or_none()
            if row is None:
                return {}
            where = {"pid": str(row.id)}
            aliases = await conn.scalars(
                sa.text(
                    "select alias from core.personality_aliases"
                    " where personality_id = cast(:pid as uuid)"
                ),
                where,
            )
            users = {
                str(user_id): platform_id
                for user_id, platform_id in await conn.execute(
                    sa.text("select id, platform_user_id from core.users")
                )
            }
            memories = await conn.execute(
                sa.text("select user_id from memory.memories where personality_id = :pid"), where
            )
            turns = await conn.execute(
                sa.text(
                    "select role, content, channel_id, user_id, author_id, created_at"
                    " from memory.turns where personality_id = :pid order by created_at, position"
                ),
                where,
            )
            return {
                "name": row.display_name,
                "avatar": row.avatar_url,
                "owner": row.owner,
                "aliases": set(aliases),
                # whose the memories are, by Discord id ("" the personality's shared scope)
                "memories": sorted(users.get(user_id, "") for (user_id,) in memories),
                "turns": [
                    (
                        r.role,
                        r.content,
                        r.channel_id,
                        users.get(r.user_id),
                        r.author_id,
                        r.created_at,
                    )
                    for r in turns
                ],
            }
    finally:
        await engine.dispose()


async def test_import_shapes_with_a_user_map_and_aliases_from_the_command_line(
    harness: Harness, tmp_path: Path
) -> None:
    backup = write_backup(tmp_path / "mira", config=shape_config(avatar=AVATAR))
    user_map = tmp_path / "users.yaml"
    user_map.write_text(f'"{ALICE}": "{ALICE_DISCORD}"\n"{BOB}": "{BOB_DISCORD}"\n')
    command = (
        "import", "shapes", str(backup.folder),
        "--user-map", str(user_map),
        "--alias", "Keeper of Greyhaven",
        "--alias", "old mira",
        "--owner", OWNER_DISCORD,
        "--history-channel", LIGHTHOUSE,
    )  # fmt: skip

    code, out, err = await tzurot(harness, *command, "--dry-run", cwd=tmp_path)
    assert code == 0, err
    assert "Would import personality 'mira-vale' (avatar: kept as URL)." in out
    assert "Memories: 6 to import, 0 already there; 4 for mapped users, 2 to the shared" in out
    assert await landed(harness, "mira-vale") == {}  # a dry run stores nothing

    code, out, err = await tzurot(harness, *command, cwd=tmp_path)
    assert code == 0, err
    assert "Created personality 'mira-vale' (avatar: kept as URL)." in out
    assert "Memories: 6 imported, 0 already there; 4 for mapped users, 2 to the shared" in out
    assert (
        f"Chat history: 8 messages, 4 exchanges imported, 0 already there "
        f"(conversation {LIGHTHOUSE})." in out
    )
    first = await landed(harness, "mira-vale")
    assert (first["name"], first["avatar"], first["owner"]) == ("Mira Vale", AVATAR, OWNER_DISCORD)
    assert first["aliases"] == {"mira", "the keeper", "keeper of greyhaven", "old mira"}
    # Summaries 0 and 3 are Alice's, 1 and 4 Bob's, 2 and 5 a stranger's (shared scope).
    assert first["memories"] == sorted(["", "", ALICE_DISCORD, ALICE_DISCORD] + [BOB_DISCORD] * 2)
    # Alice's chat with Mira: in #lighthouse, hers (the exchange's human is the mapped user),
    # in order, at the backup's times.
    assert [t[:5] for t in first["turns"]] == [
        (
            "user" if i % 2 == 0 else "assistant",
            f"message {i}",
            LIGHTHOUSE,
            ALICE_DISCORD,
            ALICE_DISCORD if i % 2 == 0 else "mira-vale",
        )
        for i in range(8)
    ]
    assert first["turns"][0][5] == datetime.fromtimestamp(BASE_TS, UTC)

    # The same command again: everything is there already; nothing is stored twice.
    code, out, err = await tzurot(harness, *command, cwd=tmp_path)
    assert code == 0, err
    assert "Updated personality 'mira-vale'" in out
    assert "Memories: 0 imported, 6 already there" in out
    assert "Chat history: 8 messages, 0 exchanges imported, 4 already there" in out
    assert await landed(harness, "mira-vale") == first


async def test_a_user_map_that_is_not_a_mapping_is_refused_before_the_mesh_is_asked(
    harness: Harness, tmp_path: Path
) -> None:
    backup = write_backup(tmp_path / "mira", config=shape_config(avatar=""))
    user_map = tmp_path / "users.yaml"
    user_map.write_text("- just\n- a list\n")
    code, _, err = await tzurot(
        harness, "import", "shapes", str(backup.folder), "--user-map", str(user_map), cwd=tmp_path
    )
    assert code == 2
    assert err == f"tzurot: {user_map} must map shapes.inc user ids to Discord user ids\n"
    assert await landed(harness, "mira-vale") == {}
