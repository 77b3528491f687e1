"""The stand-in holds requests to Auth0's published contract (README, "The stand-in tenant").

auth0-management-api.json beside this module is the part of Auth0's OpenAPI description for the
operations the runner calls (its `info.x-source` names the source; scripts/auth0-contract cuts it).
A request whose path parameters, query or JSON body the description does not allow gets the 400 a
validating tenant answers: "Query validation error: '...' on property NAME." (`invalid_query_string`),
"Payload validation error: ..." (`invalid_body`), "Path validation error: ..." (`invalid_uri`).

Checked by hand, not with a JSON Schema library: the stand-in ships with the runner (`runner
sandbox`), whose dependencies stay as they are, and these parameters and bodies use only a few
keywords (type, enum, pattern, minimum/maximum, min/maxLength, items, properties,
additionalProperties, required, $ref). Compiled once per operation; a check costs microseconds.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path

DESCRIPTION = Path(__file__).with_name("auth0-management-api.json")
API_PREFIX = "/api/v2"
KINDS = {"query": ("Query", "invalid_query_string"), "path": ("Path", "invalid_uri"), "body": ("Payload", "invalid_body")}


class Invalid(Exception):
    """A value the description does not allow: z-schema's message, as Auth0 words it, and the property."""

    def __init__(self, message: str, prop: str = ""):
        super().__init__(message)
        self.message, self.prop = message, prop


@dataclass
class Problem:
    kind: str  # "query", "path" or "body"
    message: str
    prop: str

    def text(self) -> str:
        label, _ = KINDS[self.kind]
        where = f" on property {self.prop}" if self.prop else ""
        return f"{label} validation error: '{self.message}'{where}."

    @property
    def code(self) -> str:
        return KINDS[self.kind][1]


@dataclass
class Operation:
    query: dict  # name -> schema
    path: dict
    body: dict | None  # the JSON body's schema, when the operation takes one


@functools.cache
def _description() -> dict:
    return json.loads(DESCRIPTION.read_text(encoding="utf-8"))


@functools.cache
def operation(method: str, template: str) -> Operation | None:
    """The operation for a route's path pattern ("/api/v2/roles/{id}/users"); None when undescribed."""
    if not template.startswith(API_PREFIX + "/"):
        return None
    item = _description()["paths"].get(template[len(API_PREFIX):], {}).get(method.lower())
    if item is None:
        return None
    params = {"query": {}, "path": {}}
    for p in item.get("parameters", []):
        if p["in"] in params:
            params[p["in"]][p["name"]] = p["schema"]
    body = item.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return Operation(params["query"], params["path"], body)


def check(op: Operation, path_params: dict, pairs: list[tuple[str, str]], body) -> Problem | None:
    """The first thing `op` does not allow in a request, or None."""
    try:
        for name, value in path_params.items():
            _value(op.path.get(name, {}), value, name)
    except Invalid as exc:
        return Problem("path", exc.message, exc.prop)
    problem = _query(op, pairs)
    if problem or op.body is None:
        return problem
    try:
        _json(op.body, {} if body is None else body, "")
    except Invalid as exc:
        return Problem("body", exc.message, exc.prop)
    return None


def _query(op: Operation, pairs: list[tuple[str, str]]) -> Problem | None:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name, []).append(value)
    unknown = [name for name in values if name not in op.query]
    if unknown:
        return Problem("query", f"Additional properties not allowed: {','.join(unknown)}", "")
    try:
        for name, given in values.items():
            schema = _resolve(op.query[name])
            if schema.get("type") == "array":
                items = [v for value in given for v in value.split(",")]
                for item in items:
                    _value(schema.get("items", {}), item, name)
            elif len(given) > 1:
                raise Invalid(f"Expected type {schema.get('type', 'string')} but found type array", name)
            else:
                _value(schema, given[0], name)
    except Invalid as exc:
        return Problem("query", exc.message, exc.prop)
    return None


def _value(schema: dict, text: str, prop: str) -> None:
    """A query or path value (always text on the wire) as its schema's type reads it."""
    schema = _resolve(schema)
    kind = schema.get("type", "string")
    value: object = text
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", text):
            raise Invalid("Expected type integer but found type string", prop)
        value = int(text)
    elif kind == "boolean":
        if text not in ("true", "false"):
            raise Invalid("Expected type boolean but found type string", prop)
        value = text == "true"
    _json(schema, value, prop)


def _json(schema: dict, value, prop: str) -> None:
    schema = _resolve(schema)
    kind, actual = schema.get("type"), _type(value)
    if kind and actual != kind and not (kind == "number" and actual == "integer"):
        raise Invalid(f"Expected type {kind} but found type {actual}", prop)
    if "enum" in schema and value not in schema["enum"]:
        raise Invalid(f"No enum match for: {json.dumps(value)}", prop)
    if isinstance(value, str):
        _string(schema, value, prop)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise Invalid(f"Value {value} is less than minimum {schema['minimum']}", prop)
        if "maximum" in schema and value > schema["maximum"]:
            raise Invalid(f"Value {value} is greater than maximum {schema['maximum']}", prop)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _json(schema.get("items", {}), item, f"{prop}[{i}]" if prop else f"[{i}]")
    elif isinstance(value, dict):
        _object(schema, value, prop)


def _string(schema: dict, value: str, prop: str) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise Invalid(f"String is too long ({len(value)} chars), maximum {schema['maxLength']}", prop)
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise Invalid(f"String is too short ({len(value)} chars), minimum {schema['minLength']}", prop)
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise Invalid(f"String does not match pattern {schema['pattern']}: {value}", prop)


def _object(schema: dict, value: dict, prop: str) -> None:
    known = schema.get("properties", {})
    missing = [name for name in schema.get("required", []) if name not in value]
    if missing:
        raise Invalid(f"Missing required property: {missing[0]}", prop)
    if schema.get("additionalProperties") is False:
        extra = [name for name in value if name not in known]
        if extra:
            raise Invalid(f"Additional properties not allowed: {','.join(extra)}", prop)
    for name, item in value.items():
        if name in known:
            _json(known[name], item, f"{prop}.{name}" if prop else name)


def _type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    return {float: "number", str: "string", list: "array", dict: "object"}.get(type(value), "object")


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = _description()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


@functools.cache
def _pattern(text: str) -> re.Pattern:
    return re.compile(text)
