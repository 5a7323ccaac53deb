"""`GET /api/v1/search/`: full-text search over what the caller may view (services/search.py)."""

from __future__ import annotations

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.search import SearchPageSchema, SearchQuerySchema
from services import search
from services.auth_guard import Principal
from services.search import KINDS, SearchRequest


class SearchHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Search document titles, blocks and cards I may view: ranked, with "
            "highlighted snippets and a link to the block or card; cursor pagination",
            "query": SearchQuerySchema,
            "response": SearchPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        args = self.load_query(SearchQuerySchema())
        kinds = tuple(dict.fromkeys(args["type"].split(","))) if "type" in args else KINDS

        def text(key: str) -> str | None:
            return str(args[key]) if args.get(key) is not None else None

        request = SearchRequest(
            q=args["q"],
            kinds=kinds,
            workspace_id=text("workspace_id"),
            board_id=text("board_id"),
            author_id=text("author_id"),
            updated_after=args.get("updated_after"),
            cursor=args.get("cursor"),
            limit=args["limit"],
        )
        page = await search.search(self.ctx, principal.user_id, request)
        self.send(SearchPageSchema().dump(page))


ROUTES = [route("/api/v1/search/", SearchHandler)]
