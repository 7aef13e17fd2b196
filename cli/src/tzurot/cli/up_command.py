"""`tzurot up`: the whole mesh on an embedded Postgres, until Ctrl-C."""

# ruff: noqa: PLC0415 - commands import their heavy modules inside their bodies, so
# `tzurot --help` and `tzurot chat -m` start fast (tests/unit/cli/test_lazy_start.py)

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from tzurot.cli.cli_app import app
from tzurot.cli.command_errors import _run
from tzurot.cli.paths import DEFAULT_DATA_DIR


@app.command()
def up(
    data_dir: Annotated[
        Path, typer.Option(help="Local state: Postgres, certificates, master key.")
    ] = DEFAULT_DATA_DIR,
    seeds: Annotated[
        Path | None,
        typer.Option(
            help="A personality seed file, or a folder of them (*.yaml) "
            "[default: ./personalities, when there].",
            show_default=False,
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(help="Point every provider at a local fake LLM (no key or network needed)."),
    ] = False,
    base_port: Annotated[
        int,
        typer.Option(help="gateway listens here; inference, memory, keyvault on the next ports."),
    ] = 15051,
) -> None:
    """Start the whole mesh on an embedded Postgres; Ctrl-C stops it.

    Exits 0 when stopped (Ctrl-C, SIGTERM), 1 when a service failed, 2 for a setup problem."""
    try:
        _up(data_dir, seeds, demo=demo, base_port=base_port)
    except KeyboardInterrupt:
        # Ctrl-C before asyncio.run took SIGINT over (typer would exit 130): nothing started.
        raise typer.Exit(0) from None


def _up(data_dir: Path, seeds: Path | None, *, demo: bool, base_port: int) -> None:
    """`up`'s body: it loads what it needs here, so a Ctrl-C may come in an import."""
    import asyncio
    import time
    from contextlib import AsyncExitStack

    from tzurot.cli.processes import SERVICES, Mesh
    from tzurot.cli.seeds import SeedError, read_seeds, seed_files
    from tzurot.runtime.grpc_options import with_service_grpc_experiments

    started = time.monotonic()
    with_service_grpc_experiments(os.environ)  # every service started below inherits them
    with_bot = bool(os.environ.get("TZUROT_DISCORD_TOKEN"))
    try:
        seed_paths = seed_files(seeds)  # a path given that is not there: before anything
    except SeedError as exc:
        print(f"tzurot: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None

    async def _main() -> int:
        # The services start importing now, behind start gates; run_mesh opens them once
        # certificates, Postgres and migrations are ready (processes.py).
        gated = Mesh()
        try:
            await gated.spawn_gated([*SERVICES, *(["bot"] if with_bot else [])])
            loaded = read_seeds(seed_paths)  # a file that is not YAML: before Postgres starts
            from tzurot.cli.mesh import MeshLayout, run_mesh

            async with AsyncExitStack() as stack:
                extra_env: dict[str, str] = {}
                ready = asyncio.Event()
                if demo:
                    from tzurot.cli.demo import demo_provider

                    extra_env = await stack.enter_async_context(demo_provider(load_after=ready))
                return await run_mesh(
                    MeshLayout(data_dir, base_port=base_port),
                    seeds=loaded,
                    extra_env=extra_env,
                    with_bot=with_bot,
                    ready=ready,
                    gated=gated,
                    started=started,
                )
        except Exception:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Ctrl-C came before run_mesh handles it, and reached a step in progress too
                # (Postgres's initdb or pg_ctl): that step's failure is the interrupt's doing.
                return 0
            raise
        finally:
            await gated.stop()

    code = _run(_main(), f"the gateway at 127.0.0.1:{base_port}")
    raise typer.Exit(0 if code == 130 else code)  # stopped by Ctrl-C: what `up` is for
