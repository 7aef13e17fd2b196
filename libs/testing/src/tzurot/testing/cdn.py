"""A local stand-in for Discord's CDN, where attachments' links point."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from aiohttp import web

File = tuple[bytes, str]
"""A file's body and its Content-Type."""


@asynccontextmanager
async def local_cdn(files: Mapping[str, File]) -> AsyncIterator[str]:
    """Serves `GET <base>/{name}` on loopback and yields the base URL.

    `files` maps a name's suffix (".ogg") to the file served for it; the suffix "" is the
    file for every other name. A name matching none is 404, as an expired CDN link is."""

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        for suffix, (body, content_type) in files.items():
            if suffix and name.endswith(suffix):
                return web.Response(body=body, content_type=content_type)
        if "" in files:
            body, content_type = files[""]
            return web.Response(body=body, content_type=content_type)
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/att/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/att"
    finally:
        await runner.cleanup()
