"""Serves the generated OpenAPI document."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.routing import route


class OpenApiHandler(BaseHandler):
    openapi = {"get": {"summary": "This OpenAPI 3 document", "auth": False}}

    def get(self) -> None:
        self.send(self.ctx.openapi)


ROUTES = [route("/api/v1/openapi.json", OpenApiHandler)]
