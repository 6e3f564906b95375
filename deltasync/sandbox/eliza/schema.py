"""The OpenAPI 3 document ELIZA serves at ``/api/schema/`` (drf-spectacular's shape)."""

from __future__ import annotations

from typing import Any

from deltasync.sandbox.eliza.resources import (
    COMMON_READ_ONLY,
    FIELDS,
    FILTERS,
    READ_ONLY,
    READ_ONLY_RESOURCES,
    RESOURCES,
    SCHEMA_NAMES,
)


def openapi(trailing_slash: bool) -> dict[str, Any]:
    """A minimal OpenAPI 3 document (drf-spectacular shape) listing each resource's fields."""
    slash = "/" if trailing_slash else ""
    types = {
        "str": "string",
        "email": "string",
        "bool": "boolean",
        "int": "integer",
        "date": "string",
        "choice": "string",
        "ref": "integer",
        "groups": "array",
    }
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for resource in RESOURCES:
        name = SCHEMA_NAMES[resource]
        props: dict[str, Any] = {
            field: {"type": kind, "readOnly": True}
            for field, kind in {**COMMON_READ_ONLY, **READ_ONLY[resource]}.items()
        }
        required = ["id", "uuid", "created", "modified"]
        for field, spec in FIELDS[resource].items():
            prop: dict[str, Any] = {"type": types[spec.kind]}
            if spec.nullable:
                prop["nullable"] = True
            if spec.max_length is not None:
                prop["maxLength"] = spec.max_length
            if spec.kind == "date":
                prop["format"] = "date"
            if spec.kind == "email":
                prop["format"] = "email"
            if spec.kind == "choice":
                prop["enum"] = list(spec.choices)
            if spec.kind == "groups":
                prop["items"] = {"type": "integer"}
            if resource in READ_ONLY_RESOURCES:
                prop["readOnly"] = True
            props[field] = prop
            if spec.required:
                required.append(field)
        schemas[name] = {"type": "object", "properties": props, "required": required}
        ref = {"$ref": f"#/components/schemas/{name}"}
        content = {"application/json": {"schema": ref}}
        listing: dict[str, Any] = {
            "get": {
                "operationId": f"{name.lower()}_list",
                "parameters": [
                    {"name": f, "in": "query", "schema": {"type": "string"}}
                    for f in (*FILTERS[resource], "limit", "offset")
                ],
                "responses": {
                    "200": {
                        "content": {"application/json": {"schema": {"type": "array", "items": ref}}}
                    }
                },
            }
        }
        detail: dict[str, Any] = {"get": {"responses": {"200": {"content": content}}}}
        if resource not in READ_ONLY_RESOURCES:
            listing["post"] = {
                "requestBody": {"content": content},
                "responses": {"201": {"content": content}},
            }
            for verb in ("put", "patch"):
                detail[verb] = {
                    "requestBody": {"content": content},
                    "responses": {"200": {"content": content}},
                }
            detail["delete"] = {"responses": {"204": {}}}
        paths[f"/api/{resource}{slash}"] = listing
        paths[f"/api/{resource}/{{id}}{slash}"] = detail
    return {
        "openapi": "3.0.3",
        "info": {"title": "ELIZA API", "version": "1.0.0 (deltasync sandbox)"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def options_metadata(resource: str, methods: list[str]) -> dict[str, Any]:
    """The body of an ``OPTIONS`` answer (DRF's SimpleMetadata); ``methods`` are the writes
    the token may use. DRF leaves ``actions`` out when there are none."""
    name = SCHEMA_NAMES[resource]
    body: dict[str, Any] = {
        "name": f"{name} List",
        "description": "",
        "renders": ["application/json"],
        "parses": ["application/json"],
    }
    if methods:
        fields = {
            field: {"type": spec.kind, "required": spec.required, "read_only": False}
            for field, spec in FIELDS[resource].items()
        }
        body["actions"] = dict.fromkeys(methods, fields)
    return body
