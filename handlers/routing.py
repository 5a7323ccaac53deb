"""Route declarations: readable path templates, turned into Tornado regexes.

`route("/api/v1/workspaces/{workspace_id}/", Handler)` matches with or without the trailing slash
and passes `workspace_id` to the handler method. The same templates feed the OpenAPI document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import tornado.web

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    template: str
    handler: type[tornado.web.RequestHandler]

    @property
    def regex(self) -> str:
        pattern = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", self.template.rstrip("/"))
        return pattern + "/?"

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.template)


def route(template: str, handler: type[tornado.web.RequestHandler]) -> Route:
    return Route(template, handler)
