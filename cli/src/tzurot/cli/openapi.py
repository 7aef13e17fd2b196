"""OpenAPI 3 description of the edge's JSON routes, made from a protobuf descriptor set.

The Envoy edge transcodes every RPC that carries a `google.api.http` annotation to JSON over
HTTP (deploy/k8s/base/edge/envoy.yaml, with `preserve_proto_field_names`). This module reads
those annotations, and the messages they use, from a FileDescriptorSet (with source info, for
the descriptions) and writes the matching OpenAPI document, following the proto3 JSON
mapping: 64-bit integers and bytes are strings, enums are their value names, well-known types
have their JSON forms. Nothing here names an RPC: a new annotated RPC appears by itself.

    python -m tzurot.cli.openapi DESCRIPTOR_SET OUT.json
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, http_pb2  # type: ignore[import-untyped]  # no stubs
from google.protobuf import descriptor_pb2

F = descriptor_pb2.FieldDescriptorProto
JsonSchema = dict[str, Any]

_SCALARS: dict[int, JsonSchema] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT64: {"type": "string", "format": "int64"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64"},
    F.TYPE_SINT64: {"type": "string", "format": "int64"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}

_WELL_KNOWN: dict[str, JsonSchema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "example": "1.5s"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}

_VERBS = ("get", "put", "post", "delete", "patch")
_TEMPLATE_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")
ERROR_SCHEMA = "google.rpc.Status"


class Catalog:
    """Every message and enum of a descriptor set by full name, with their comments."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[str, str] = {}
        self.services: list[tuple[str, descriptor_pb2.ServiceDescriptorProto]] = []
        for file in files.file:
            self._index(file)

    def _index(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        package = f".{file.package}" if file.package else ""
        comments = {
            tuple(location.path): _clean(location.leading_comments)
            for location in file.source_code_info.location
            if location.leading_comments.strip()
        }

        def messages(
            items: Any, prefix: str, path: tuple[int, ...], tag: int
        ) -> None:  # tag: 4 (message_type) at file level, 3 (nested_type) inside a message
            for index, message in enumerate(items):
                name = f"{prefix}.{message.name}"
                here = (*path, tag, index)
                self.messages[name] = message
                self._comment(name, comments.get(here))
                for number, field in enumerate(message.field):
                    self._comment(f"{name}.{field.name}", comments.get((*here, 2, number)))
                for number, enum in enumerate(message.enum_type):
                    self.enums[f"{name}.{enum.name}"] = enum
                    self._comment(f"{name}.{enum.name}", comments.get((*here, 4, number)))
                messages(message.nested_type, name, here, 3)

        messages(file.message_type, package, (), 4)
        for index, enum in enumerate(file.enum_type):
            self.enums[f"{package}.{enum.name}"] = enum
            self._comment(f"{package}.{enum.name}", comments.get((5, index)))
        for index, service in enumerate(file.service):
            name = f"{package}.{service.name}"
            self.services.append((name, service))
            self._comment(name, comments.get((6, index)))
            for number, method in enumerate(service.method):
                self._comment(f"{name}.{method.name}", comments.get((6, index, 2, number)))

    def _comment(self, name: str, text: str | None) -> None:
        if text:
            self.comments[name] = text


def _clean(comment: str) -> str:
    """A `//` comment's text: one leading space off each line, blank edges dropped."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip()


def _schema_name(full_name: str) -> str:
    return full_name.lstrip(".")


def _ref(full_name: str) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{_schema_name(full_name)}"}


class Builder:
    """Builds the OpenAPI document; collects the schemas the routes reach."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.schemas: dict[str, JsonSchema] = {}

    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> JsonSchema:
        entry = self._map_entry(field)
        if entry is not None:
            value = next(f for f in entry.field if f.number == 2)
            return {"type": "object", "additionalProperties": self._single(value)}
        single = self._single(field)
        if field.label == F.LABEL_REPEATED:
            return {"type": "array", "items": single}
        return single

    def _map_entry(
        self, field: descriptor_pb2.FieldDescriptorProto
    ) -> descriptor_pb2.DescriptorProto | None:
        if field.type != F.TYPE_MESSAGE or field.label != F.LABEL_REPEATED:
            return None
        message = self.catalog.messages.get(field.type_name)
        if message is not None and message.options.map_entry:
            return message
        return None

    def _single(self, field: descriptor_pb2.FieldDescriptorProto) -> JsonSchema:
        if field.type == F.TYPE_ENUM:
            self._add_enum(field.type_name)
            return _ref(field.type_name)
        if field.type in (F.TYPE_MESSAGE, F.TYPE_GROUP):
            well_known = _WELL_KNOWN.get(_schema_name(field.type_name))
            if well_known is not None:
                return dict(well_known)
            self.add_message(field.type_name)
            return _ref(field.type_name)
        return dict(_SCALARS[field.type])

    def _add_enum(self, full_name: str) -> None:
        name = _schema_name(full_name)
        if name in self.schemas:
            return
        enum = self.catalog.enums[full_name]
        schema: JsonSchema = {"type": "string", "enum": [value.name for value in enum.value]}
        self._describe(schema, full_name)
        self.schemas[name] = schema

    def add_message(self, full_name: str) -> None:
        name = _schema_name(full_name)
        if name in self.schemas:
            return
        message = self.catalog.messages[full_name]
        schema: JsonSchema = {"type": "object", "properties": {}}
        self.schemas[name] = schema  # before the fields: messages may refer to themselves
        self._describe(schema, full_name)
        oneofs: dict[int, list[str]] = {}
        for field in message.field:
            property_schema = self.field_schema(field)
            comment = self.catalog.comments.get(f"{full_name}.{field.name}")
            if comment:
                property_schema = (
                    {"allOf": [property_schema], "description": comment}
                    if "$ref" in property_schema
                    else {**property_schema, "description": comment}
                )
            schema["properties"][field.name] = property_schema
            if field.HasField("oneof_index") and not field.proto3_optional:
                oneofs.setdefault(field.oneof_index, []).append(field.name)
        for index, members in oneofs.items():
            group = message.oneof_decl[index].name
            note = f"At most one of {', '.join(members)} (oneof {group})."
            schema["description"] = f"{schema.get('description', '')}\n\n{note}".strip()

    def _describe(self, schema: JsonSchema, full_name: str) -> None:
        comment = self.catalog.comments.get(full_name)
        if comment:
            schema["description"] = comment

    def query_parameters(
        self,
        message_name: str,
        exclude: set[str],
        prefix: str = "",
        seen: frozenset[str] = frozenset(),
    ) -> Iterator[JsonSchema]:
        """Scalar fields (also inside sub-messages, as a.b) that a query string can set."""
        message = self.catalog.messages[message_name]
        for field in message.field:
            path = f"{prefix}{field.name}"
            if path in exclude:
                continue
            well_known = _schema_name(field.type_name) in _WELL_KNOWN
            if field.type == F.TYPE_MESSAGE and not well_known:
                single = self._map_entry(field) is None and field.label != F.LABEL_REPEATED
                if single and field.type_name not in seen:
                    yield from self.query_parameters(
                        field.type_name, exclude, f"{path}.", seen | {message_name}
                    )
                continue
            parameter: JsonSchema = {
                "name": path,
                "in": "query",
                "required": False,
                "schema": self.field_schema(field),
            }
            comment = self.catalog.comments.get(f"{message_name}.{field.name}")
            if comment:
                parameter["description"] = comment
            yield parameter

    def path_parameter(self, message_name: str, path: str) -> JsonSchema:
        field = self._field_at(message_name, path)
        parameter: JsonSchema = {
            "name": path,
            "in": "path",
            "required": True,
            "schema": self.field_schema(field),
        }
        return parameter

    def _field_at(self, message_name: str, path: str) -> descriptor_pb2.FieldDescriptorProto:
        head, _, rest = path.partition(".")
        message = self.catalog.messages[message_name]
        for field in message.field:
            if field.name == head:
                return self._field_at(field.type_name, rest) if rest else field
        raise ValueError(f"{_schema_name(message_name)} has no field {path!r}")

    def operation(
        self,
        service: str,
        method: descriptor_pb2.MethodDescriptorProto,
        rule: http_pb2.HttpRule,
    ) -> tuple[str, str, JsonSchema]:
        verb = next((v for v in _VERBS if getattr(rule, v)), "")
        if not verb:
            raise ValueError(f"{service}.{method.name}: only get/put/post/delete/patch rules")
        template = getattr(rule, verb)
        variables = _TEMPLATE_VARIABLE.findall(template)
        path = _TEMPLATE_VARIABLE.sub(lambda found: "{" + found.group(1) + "}", template)
        operation: JsonSchema = {
            "operationId": f"{service.rsplit('.', 1)[-1]}_{method.name}",
            "tags": [_schema_name(service)],
            "x-grpc-method": f"/{_schema_name(service)}/{method.name}",
            "parameters": [self.path_parameter(method.input_type, v) for v in variables],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": self._message_ref(method)}},
                },
                "default": {
                    "description": "The gRPC status as JSON (code, message, details).",
                    "content": {"application/json": {"schema": _ref(f".{ERROR_SCHEMA}")}},
                },
            },
        }
        comment = self.catalog.comments.get(f"{service}.{method.name}")
        operation["summary"] = (comment or method.name).splitlines()[0]
        if comment:
            operation["description"] = comment
        if rule.body == "*":
            self.add_message(method.input_type)
            operation["requestBody"] = _body(_ref(method.input_type))
        elif rule.body:
            operation["requestBody"] = _body(
                self.field_schema(self._field_at(method.input_type, rule.body))
            )
            operation["parameters"] += self.query_parameters(
                method.input_type, {*variables, rule.body}
            )
        else:
            operation["parameters"] += self.query_parameters(method.input_type, set(variables))
        if not operation["parameters"]:
            del operation["parameters"]
        return path, verb, operation

    def _message_ref(self, method: descriptor_pb2.MethodDescriptorProto) -> JsonSchema:
        if method.server_streaming:
            raise ValueError(f"{method.name}: a streaming RPC cannot have an HTTP rule here")
        self.add_message(method.output_type)
        return _ref(method.output_type)


def _body(schema: JsonSchema) -> JsonSchema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def http_rules(method: descriptor_pb2.MethodDescriptorProto) -> list[http_pb2.HttpRule]:
    """The method's google.api.http rule and its additional_bindings (none when absent)."""
    options = descriptor_pb2.MethodOptions()
    options.ParseFromString(method.options.SerializeToString())
    rule: http_pb2.HttpRule = options.Extensions[annotations_pb2.http]
    if not rule.ByteSize():
        return []
    return [rule, *rule.additional_bindings]


def build_openapi(files: descriptor_pb2.FileDescriptorSet, *, title: str) -> JsonSchema:
    """The OpenAPI 3.0 document of every HTTP-annotated RPC in `files`."""
    catalog = Catalog(files)
    builder = Builder(catalog)
    paths: dict[str, dict[str, JsonSchema]] = {}
    for service_name, service in catalog.services:
        for method in service.method:
            for binding, rule in enumerate(http_rules(method)):
                path, verb, operation = builder.operation(service_name, method, rule)
                if binding:
                    operation["operationId"] += f"_{binding}"
                if verb in paths.setdefault(path, {}):
                    raise ValueError(f"two RPCs claim {verb.upper()} {path}")
                paths[path][verb] = operation
    if f".{ERROR_SCHEMA}" in catalog.messages:
        builder.add_message(f".{ERROR_SCHEMA}")
    else:  # the descriptor set lacks google/rpc/status.proto: its JSON form, by hand
        builder.schemas[ERROR_SCHEMA] = {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "format": "int32"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": _WELL_KNOWN["google.protobuf.Any"]},
            },
        }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": "v1",
            "description": (
                "The JSON routes of the Envoy edge (gRPC-JSON transcoding of the gateway's "
                "annotated RPCs). Generated from the descriptor set by "
                "`python -m tzurot.cli.openapi`; do not edit. Clients present a `cli` "
                "certificate (mutual TLS)."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(builder.schemas.items()))},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m tzurot.cli.openapi DESCRIPTOR_SET OUT.json", file=sys.stderr)
        return 2
    files = descriptor_pb2.FileDescriptorSet.FromString(Path(argv[0]).read_bytes())
    document = build_openapi(files, title="Tzurot edge (JSON)")
    Path(argv[1]).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
