"""The web app (sources in `web/`, built into `handlers/webapp_static/`) served at `/`.

The built bundle ships inside the Python package, so `pip install -e . && collab dev` serves the
app with no Node on the machine (README "Web app"); `tests/test_webapp_bundle.py` rebuilds it
from `web/` and fails when the committed bundle is stale. These are not API routes: they stay out
of the route table (no OpenAPI operation, no CORS grant — the app's own origin needs none).

* `/assets/<file>`: Vite's content-hashed files, cacheable for a year (a new build = new names).
* `/` and `/w/...`: the app's pages (history routing), all answered with `index.html`, never
  cached, so a deploy is picked up on the next load. Anything else keeps the JSON 404.
* `/invite/<token>`: the page an invitation mail links to (the app signs the person in or up,
  then accepts). Its own route, so its template names the token and the logs redact it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from core.errors import NotFound
from handlers.base import JsonErrors
from services.workspaces import INVITE_PAGE

WEBAPP_DIR = Path(__file__).resolve().parent / "webapp_static"
_YEAR_S = 365 * 24 * 3600
#: What the app's page may load: its own scripts only (no inline or injected script), inline
#: styles (BlockNote and Mantine set them), images from anywhere https, and API calls and sockets
#: to any origin (the app may be configured to talk to another one, README "Web app").
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: https:",
        "font-src 'self' data:",
        "connect-src 'self' http: https: ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    )
)


class AppAssetHandler(JsonErrors, tornado.web.StaticFileHandler):
    """A hashed asset; a missing one is the API's JSON 404 like any unknown path."""

    def get_cache_time(self, path: str, modified: Any, mime_type: str) -> int:
        return _YEAR_S

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", f"public, max-age={_YEAR_S}, immutable")
        self.set_header("X-Content-Type-Options", "nosniff")


class AppPageHandler(JsonErrors):
    """Every page of the single-page app is its `index.html`; the app routes on the client."""

    def get(self) -> None:
        index = WEBAPP_DIR / "index.html"
        if not index.is_file():
            raise NotFound("the web app is not built: run `npm ci && npm run build` in web/")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.write(index.read_bytes())

    def head(self) -> None:
        self.get()


def url_specs() -> list[tornado.web.URLSpec]:
    """The app's URLs, appended after the API routes by `server.app.make_app`."""
    return [
        tornado.web.url(
            r"/assets/(.+)",
            _named(AppAssetHandler, "/assets/{file}"),
            {"path": str(WEBAPP_DIR / "assets")},
        ),
        tornado.web.url(r"/(?:w(?:/.*)?)?", _named(AppPageHandler, "/")),
        # No group captures the token: Tornado would decode it (a link with bad UTF-8 would be
        # a 400, not the page); the template names it for the logs' redaction.
        tornado.web.url(r"/invite/[^/]+/?", _named(AppPageHandler, INVITE_PAGE)),
    ]


def _named(handler: type[tornado.web.RequestHandler], template: str) -> type:
    """A route template for the access log and metrics labels, as `make_app` gives API routes."""
    return type(handler.__name__, (handler,), {"route_template": template})
