"""The published OpenAPI description (docs/contracts/edge.openapi.json) matches the real edge.

Every GET route of the document is called through the real Envoy edge in front of a real
mesh; each answer must validate against the document: 200 against the route's response
schema, anything else against google.rpc.Status. Objects are validated closed (no property
the document does not name), so a renamed or unlisted JSON field fails. New routes are
covered without edits: the routes come from the document.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tzurot.testing.e2e import Harness, converse, echo_mesh, request, set_key
from tzurot.testing.edge import REPO_ROOT, EdgePorts, running_envoy
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.e2e

DOCUMENT = REPO_ROOT / "docs" / "contracts" / "edge.openapi.json"
URN = "urn:tzurot:edge-openapi"


def closed(node: Any) -> Any:
    """The schema with additionalProperties false on every object that lists properties."""
    if isinstance(node, dict):
        out = {key: closed(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [closed(item) for item in node]
    return node


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> OAS30Validator:
    registry: Registry[Any] = Registry().with_resource(
        URN, Resource.from_contents(document, default_specification=DRAFT4)
    )
    ref = schema["$ref"].replace("#", f"{URN}#", 1)
    return OAS30Validator({"$ref": ref}, registry=registry)


@pytest.fixture
async def edge(
    fresh_database: DatabaseFactory, tmp_path: Path
) -> AsyncIterator[tuple[Harness, EdgePorts]]:
    async with (
        echo_mesh(fresh_database(), tmp_path) as harness,
        running_envoy(harness.mesh.pki / "edge", harness.mesh.ports.gateway, tmp_path) as ports,
    ):
        yield harness, ports


async def test_every_get_route_answers_as_the_document_says(
    edge: tuple[Harness, EdgePorts],
) -> None:
    harness, ports = edge
    await set_key(harness)
    _, job_id = await converse(harness, request("hello"))
    samples = {"personality": "the mirror", "job_id": job_id}
    document = closed(json.loads(DOCUMENT.read_text()))
    status_schema = {"$ref": "#/components/schemas/google.rpc.Status"}
    pki = harness.mesh.pki
    context = ssl.create_default_context(cafile=str(pki / "ca" / "ca.crt"))
    context.load_cert_chain(pki / "cli" / "tls.crt", pki / "cli" / "tls.key")
    outcomes: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for path, operations in document["paths"].items():
            if "get" not in operations:
                continue
            operation = operations["get"]
            url = re.sub(r"\{([^}]+)\}", lambda m: quote(samples.get(m.group(1), "x")), path)
            async with session.get(f"https://127.0.0.1:{ports.edge}{url}", ssl=context) as reply:
                body = await reply.json()
                outcomes[path] = reply.status
            schema = (
                operation["responses"]["200"]["content"]["application/json"]["schema"]
                if reply.status == 200
                else status_schema
            )
            errors = [e.message for e in validator_for(document, schema).iter_errors(body)]
            assert not errors, f"GET {url} ({reply.status}): {errors}"
    # The routes with what they need answer 200: their bodies were checked, not only errors.
    assert outcomes["/v1/personalities"] == 200
    assert outcomes["/v1/personalities/{personality}"] == 200
    assert outcomes["/v1/jobs/{job_id}"] == 200
    assert len(outcomes) >= 5


def test_closing_the_schemas_catches_an_unknown_field() -> None:
    document = closed(json.loads(DOCUMENT.read_text()))
    schema = {"$ref": "#/components/schemas/tzurot.v1.ListPersonalitiesResponse"}
    assert validator_for(document, schema).is_valid({"personalities": []})
    assert not validator_for(document, schema).is_valid({"personalitiez": []})
