"""The OpenAPI document, made to say what the API really answers.

FastAPI documents a 422 validation error (its ``HTTPValidationError`` schema) on
every operation with parameters; this API never sends it: a request that does
not have the expected form is a 400 ``malformed-request`` problem. Here every
error response is ``application/problem+json`` with the problem schema, every
operation that takes input documents its 400, every operation documents the
503 a failing database gives, the writes document their request bodies (a DSSE
envelope, or a batch of them) and the 408 of a body that does not arrive.
``tests/api/test_openapi_truth.py`` compares the document with real answers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["accurate_openapi"]

PROBLEM = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemModel"}
_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "A DSSE envelope; payloadType application/vnd.saksi.record+json",
    "required": ["payloadType", "payload", "signatures"],
    "additionalProperties": False,
    "properties": {
        "payloadType": {"type": "string", "maxLength": 256},
        "payload": {"type": "string", "format": "byte"},
        "signatures": {
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": {
                "type": "object",
                "required": ["keyid", "sig"],
                "additionalProperties": False,
                "properties": {
                    "keyid": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    # Ed25519: 64 bytes, in standard base64.
                    "sig": {
                        "type": "string",
                        "pattern": "^[A-Za-z0-9+/]{86}==$",
                    },
                },
            },
        },
    },
}
_BATCH: dict[str, Any] = {
    "type": "object",
    "required": ["envelopes"],
    "additionalProperties": False,
    "properties": {
        "envelopes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1000,
            # Each envelope is checked on its own and answered in its result,
            # so the request only asks for objects here.
            "items": {
                "type": "object",
                "description": "a DSSE envelope (see Envelope); refused on its own",
            },
        }
    },
}
_BODIES = {
    "/v1/entries": "Envelope",
    "/v1/entries/batch": "Batch",
}
# OpenAPI links: what a client (and schemathesis's stateful phase) can ask
# next with a value from an answer. (path, method, status) -> link name ->
# (path, method of the target, its parameters: name -> runtime expression).
_LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {}
for _status in ("200", "201"):
    _LINKS[("/v1/entries", "post", _status)] = {
        "TheEntry": ("/v1/entries/{index}", "get", {"index": "$response.body#/index"}),
        "ItsInclusionProof": (
            "/v1/proofs/inclusion",
            "get",
            {"index": "$response.body#/index"},
        ),
        "ItsLeaf": (
            "/v1/proofs/inclusion",
            "get",
            {"leaf_hash": "$response.body#/leaf_hash"},
        ),
        "ConsistencyFromItsTree": (
            "/v1/proofs/consistency",
            "get",
            {"old": "$response.body#/tree_size"},
        ),
    }
_LINKS[("/v1/entries/{index}", "get", "200")] = {
    "ItsInclusionProof": (
        "/v1/proofs/inclusion",
        "get",
        {"index": "$response.body#/index", "leaf_hash": "$response.body#/leaf_hash"},
    ),
    "ItsSubjectHistory": (
        "/v1/subjects/{subject}",
        "get",
        {"subject": "$response.body#/record/subject"},
    ),
}
_LINKS[("/v1/log", "get", "200")] = {
    "ConsistencyToNow": (
        "/v1/proofs/consistency",
        "get",
        {"old": "$response.body#/tree_size"},
    ),
}
_LINKS[("/v1/proofs/inclusion", "get", "200")] = {
    "TheEntry": ("/v1/entries/{index}", "get", {"index": "$response.body#/index"}),
    "ConsistencyFromItsTree": (
        "/v1/proofs/consistency",
        "get",
        {"old": "$response.body#/tree_size"},
    ),
}
_TITLES = {
    400: "malformed request (problem+json)",
    404: "not found or beyond the log (problem+json)",
    408: "the body did not arrive in time (problem+json)",
    503: "the database or the writer is unavailable (problem+json)",
}


def accurate_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for ``app``, corrected as the module docstring says."""
    schema = FastAPI.openapi(app)
    if schema.get("x-saksi-accurate"):
        return schema
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Envelope"] = _ENVELOPE
    components["Batch"] = _BATCH
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            _correct(path, operation)
    _link(schema["paths"])
    schema["x-saksi-accurate"] = True
    app.openapi_schema = schema
    return schema


def _correct(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    validation = responses.get("422")
    if validation is not None and "HTTPValidationError" in str(validation):
        del responses["422"]
    body = _BODIES.get(path)
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}
            },
        }
        responses.setdefault("408", {})
    if operation.get("parameters") or body is not None:
        responses.setdefault("400", {})
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        responses.setdefault("404", {})
    responses.setdefault("503", {})
    for code, response in responses.items():
        if int(code) >= 400:
            response["description"] = _TITLES.get(
                int(code), response.get("description") or "problem+json"
            )
            response["content"] = {PROBLEM: {"schema": _PROBLEM_REF}}


def _link(paths: dict[str, Any]) -> None:
    """Add ``_LINKS`` to the answers they start from (targets by operationId)."""
    for (path, method, status), links in _LINKS.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        made = {}
        for name, (target, target_method, parameters) in links.items():
            operation = paths.get(target, {}).get(target_method)
            if operation is None or "operationId" not in operation:
                continue
            made[name] = {
                "operationId": operation["operationId"],
                "parameters": dict(parameters),
            }
        if made:
            response["links"] = made
