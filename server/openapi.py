"""The OpenAPI 3 document, generated from the routes and their marshmallow schemas.

Each handler declares `openapi = {"get": {"summary", "body", "query", "response", "status",
"auth"}}`; a test checks that every route and method is documented.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from handlers.routing import Route
from handlers.schemas.common import ErrorSchema

_ERROR_STATUSES = {
    "400": "Invalid input",
    "401": "Missing or invalid token",
    "403": "Not allowed",
    "404": "Not found",
    "409": "Conflict",
    "413": "Body too large",
    "429": "Rate limited",
    "503": "A backing service is unavailable",
}


def _operation(route: Route, spec: dict[str, Any]) -> dict[str, Any]:
    status = str(spec.get("status", 200))
    op: dict[str, Any] = {"summary": spec.get("summary", ""), "responses": {}}
    tag = route.template.strip("/").split("/")[2] if route.template.startswith("/api/") else "ops"
    op["tags"] = [tag]
    if route.params:
        op["parameters"] = [
            {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in route.params
        ]
    if spec.get("query") is not None:
        op.setdefault("parameters", []).append({"in": "query", "schema": spec["query"]})
    if spec.get("body") is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": spec["body"]}},
        }
    response: dict[str, Any] = {"description": spec.get("summary", "OK")}
    if spec.get("response") is not None:
        response["content"] = {"application/json": {"schema": spec["response"]}}
    op["responses"][status] = response
    for code, text in _ERROR_STATUSES.items():
        op["responses"][code] = {
            "description": text,
            "content": {"application/json": {"schema": "Error"}},
        }
    if spec.get("auth", True):
        op["security"] = [{"bearer": []}]
    return op


def build_spec(routes: list[Route]) -> dict[str, Any]:
    spec = APISpec(
        title="Collab API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Real-time collaboration backend. Errors: DESIGN.md §6 body."},
    )
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    for route in routes:
        declared = getattr(route.handler, "openapi", None)
        if not declared:
            continue
        path = route.template
        operations = {method: _operation(route, op) for method, op in declared.items()}
        spec.path(path=path, operations=operations)
    return spec.to_dict()
