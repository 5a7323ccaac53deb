"""Route declarations: readable path templates, turned into Tornado regexes.

`route("/api/v1/workspaces/{workspace_id}/", Handler)` matches with or without the trailing slash
and passes `workspace_id` to the handler method. The same templates feed the OpenAPI document.
"""

from __future__ import annotations

from dataclasses import dataclass

import tornado.web

from core.paths import template_params, template_regex


@dataclass(frozen=True)
class Route:
    template: str
    handler: type[tornado.web.RequestHandler]

    @property
    def regex(self) -> str:
        return template_regex(self.template)

    @property
    def params(self) -> list[str]:
        return template_params(self.template)


def route(template: str, handler: type[tornado.web.RequestHandler]) -> Route:
    return Route(template, handler)
