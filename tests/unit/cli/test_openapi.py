"""The OpenAPI description of the edge's JSON routes (tzurot.cli.openapi, docs/contracts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

from tzurot.cli.openapi import build_openapi, http_rules
from tzurot.v1 import gateway_pb2

REPO = Path(__file__).resolve().parents[3]
CONTRACTS = REPO / "docs" / "contracts"
F = descriptor_pb2.FieldDescriptorProto


def published() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CONTRACTS / "edge.openapi.json").read_text())
    return document


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    return descriptor_pb2.FileDescriptorSet.FromString((CONTRACTS / "tzurot.binpb").read_bytes())


def test_the_published_document_is_valid_openapi() -> None:
    validate(published())


def test_every_annotated_gateway_rpc_has_its_route() -> None:
    """Read from the compiled contracts, so a new annotated RPC is checked without edits."""
    paths = published()["paths"]
    service = gateway_pb2.DESCRIPTOR.services_by_name["GatewayService"]
    annotated = 0
    for method in service.methods:
        options = method.GetOptions()
        if not options.HasExtension(annotations_pb2.http):
            continue
        rule = options.Extensions[annotations_pb2.http]
        verb = rule.WhichOneof("pattern")
        path = getattr(rule, verb)
        operation = paths[path][verb]
        annotated += 1
        assert operation["x-grpc-method"] == f"/tzurot.v1.GatewayService/{method.name}"
        output = f"#/components/schemas/{method.output_type.full_name}"
        assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": output
        }
        if verb in ("get", "delete"):
            assert "requestBody" not in operation
    assert annotated == sum(len(methods) for methods in paths.values())
    assert annotated >= 5


def test_path_variables_are_required_and_not_repeated_as_queries() -> None:
    operation = published()["paths"]["/v1/personalities/{personality}"]["get"]
    by_name = {(p["name"], p["in"]): p for p in operation["parameters"]}
    assert by_name[("personality", "path")]["required"] is True
    assert ("personality", "query") not in by_name
    # Sub-message scalars are query parameters with dotted names, as Envoy reads them.
    assert by_name[("actor.user_id", "query")]["schema"] == {"type": "string"}


def test_proto3_json_mapping() -> None:
    schemas = published()["components"]["schemas"]
    job = schemas["tzurot.v1.Job"]["properties"]
    assert job["created_at"] == {"type": "string", "format": "date-time"}
    assert job["status"] == {"$ref": "#/components/schemas/tzurot.v1.JobStatus"}
    assert "JOB_STATUS_DELIVERED" in schemas["tzurot.v1.JobStatus"]["enum"]
    # Field names are the proto names (the edge sets preserve_proto_field_names).
    assert "idempotency_key" in job
    # Errors: google.rpc.Status, as Envoy renders a failed call.
    status = schemas["google.rpc.Status"]["properties"]
    assert set(status) == {"code", "message", "details"}


def _file_with(
    rule: http_pb2.HttpRule, *, streaming: bool = False
) -> descriptor_pb2.FileDescriptorSet:
    """A one-RPC contract: Thing.Get(GetRequest{int64 id; Inner inner; bytes blob}) -> Reply."""
    file = descriptor_pb2.FileDescriptorProto(name="t.proto", package="t", syntax="proto3")
    inner = file.message_type.add(name="Inner")
    inner.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    request = file.message_type.add(name="GetRequest")
    request.field.add(name="id", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    request.field.add(
        name="inner", number=2, type=F.TYPE_MESSAGE, type_name=".t.Inner", label=F.LABEL_OPTIONAL
    )
    request.field.add(name="blob", number=3, type=F.TYPE_BYTES, label=F.LABEL_REPEATED)
    reply = file.message_type.add(name="Reply")
    reply.field.add(
        name="items", number=1, type=F.TYPE_MESSAGE, type_name=".t.Inner", label=F.LABEL_REPEATED
    )
    service = file.service.add(name="Thing")
    method = service.method.add(
        name="Get", input_type=".t.GetRequest", output_type=".t.Reply", server_streaming=streaming
    )
    method.options.Extensions[annotations_pb2.http].CopyFrom(rule)
    return descriptor_pb2.FileDescriptorSet(file=[file])


def test_a_body_field_and_additional_bindings() -> None:
    rule = http_pb2.HttpRule(post="/v1/things/{id}", body="inner")
    rule.additional_bindings.add(get="/v1/things/{id}:peek")
    document = build_openapi(_file_with(rule), title="t")
    validate(document)
    post = document["paths"]["/v1/things/{id}"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/t.Inner"
    }
    parameters = {p["name"]: p for p in post["parameters"]}
    assert parameters["id"]["schema"] == {"type": "string", "format": "int64"}
    assert parameters["blob"]["schema"] == {
        "type": "array",
        "items": {"type": "string", "format": "byte"},
    }
    assert "inner.tag" not in parameters  # the body field is not also a query
    peek = document["paths"]["/v1/things/{id}:peek"]["get"]
    assert {p["name"] for p in peek["parameters"]} == {"id", "inner.tag", "blob"}
    assert peek["operationId"] == "Thing_Get_1"
    assert len(http_rules(_file_with(rule).file[0].service[0].method[0])) == 2


def test_a_streaming_rpc_or_an_unknown_path_field_is_refused() -> None:
    with pytest.raises(ValueError, match="streaming"):
        build_openapi(_file_with(http_pb2.HttpRule(get="/v1/x"), streaming=True), title="t")
    with pytest.raises(ValueError, match="no field 'nope'"):
        build_openapi(_file_with(http_pb2.HttpRule(get="/v1/x/{nope}")), title="t")


def test_the_command_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "edge.json"
    subprocess.run(
        [sys.executable, "-m", "tzurot.cli.openapi", str(CONTRACTS / "tzurot.binpb"), str(out)],
        check=True,
    )
    assert json.loads(out.read_text()) == published()
    assert build_openapi(descriptor_set(), title="Tzurot edge (JSON)") == published()
