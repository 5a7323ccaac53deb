"""`/api/v1/notifications/…`: the caller's own inbox (grouped, cursor-paged), unread count, read /
archive, and per-kind preferences. Every route is scoped to the signed-in user: another user's
notification id is a 404 (services/notifications.py)."""

from __future__ import annotations

from typing import ClassVar

from handlers.base import BaseHandler, signed_in
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.notifications import (
    InboxPageSchema,
    InboxQuerySchema,
    PreferenceListSchema,
    PreferenceSchema,
    PreferenceUpdateSchema,
    TargetSchema,
    UnreadCountSchema,
)
from models.repo.notifications import Target
from services import notifications as service
from services.auth_guard import Principal


class InboxHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "My notifications, one item per group (a thread, or a kind about one "
            "document/card) with its count and latest notification; newest first, cursor-paged",
            "query": InboxQuerySchema,
            "response": InboxPageSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        args = self.load_query(InboxQuerySchema())
        query = service.InboxQuery(args["view"], args.get("cursor"), args["limit"])
        page = await service.list_inbox(self.ctx.db, principal.user_id, query)
        self.send(InboxPageSchema().dump(page))


class UnreadCountHandler(BaseHandler):
    openapi = {
        "get": {"summary": "How many of my notifications are unread", "response": UnreadCountSchema}
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        count = await service.unread_count(self.ctx.db, principal.user_id)
        self.send({"unread_count": count})


def _bulk_openapi(summary: str) -> dict[str, dict[str, object]]:
    return {
        "post": {
            "summary": f"{summary}: one group (`group_key`) or all (`all: true`)",
            "body": TargetSchema,
            "response": UnreadCountSchema,
        }
    }


def _one_openapi(summary: str) -> dict[str, dict[str, object]]:
    return {
        "post": {
            "summary": f"{summary}: one notification",
            "body": EmptySchema,
            "response": UnreadCountSchema,
        }
    }


class _StateChange(BaseHandler):
    """Mark rows read, archive them, or bring them back; answers the unread total after it."""

    state: ClassVar[str] = "read"
    on: ClassVar[bool] = True

    async def change(self, principal: Principal, target: Target) -> None:
        count = await service.change_state(self.ctx, principal.user_id, self.state, target, self.on)
        self.send({"unread_count": count})


class _GroupOrAll(_StateChange):
    @signed_in
    async def post(self, principal: Principal) -> None:
        data = self.load_body(TargetSchema())
        await self.change(principal, Target(group_key=data.get("group_key")))


class _OneNotification(_StateChange):
    @signed_in
    async def post(self, principal: Principal, notification_id: str) -> None:
        self.load_body(EmptySchema())
        await self.change(principal, Target(notification_id=notification_id))


class ReadHandler(_GroupOrAll):
    openapi = _bulk_openapi("Mark read")


class ReadOneHandler(_OneNotification):
    openapi = _one_openapi("Mark read")


class ArchiveHandler(_GroupOrAll):
    openapi = _bulk_openapi("Archive")
    state = "archived"


class ArchiveOneHandler(_OneNotification):
    openapi = _one_openapi("Archive")
    state = "archived"


class UnarchiveHandler(_GroupOrAll):
    openapi = _bulk_openapi("Bring back from the archive")
    state, on = "archived", False


class UnarchiveOneHandler(_OneNotification):
    openapi = _one_openapi("Bring back from the archive")
    state, on = "archived", False


class PreferencesHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "Every notification kind with my channel (in_app, email_immediate, "
            "email_digest_hourly, email_digest_daily, off) and its default",
            "response": PreferenceListSchema,
        }
    }

    @signed_in
    async def get(self, principal: Principal) -> None:
        preferences = await service.list_preferences(self.ctx.db, principal.user_id)
        self.send(PreferenceListSchema().dump({"preferences": preferences}))


class PreferenceHandler(BaseHandler):
    openapi = {
        "put": {
            "summary": "Set my channel for one notification kind (400 for an unknown kind)",
            "body": PreferenceUpdateSchema,
            "response": PreferenceSchema,
        }
    }

    @signed_in
    async def put(self, principal: Principal, kind: str) -> None:
        data = self.load_body(PreferenceUpdateSchema())
        preference = await service.set_preference(
            self.ctx.db, principal.user_id, kind, data["channel"]
        )
        self.send(PreferenceSchema().dump(preference))


# The fixed paths come before `{notification_id}` ones: Tornado takes the first match.
ROUTES = [
    route("/api/v1/notifications/", InboxHandler),
    route("/api/v1/notifications/unread-count/", UnreadCountHandler),
    route("/api/v1/notifications/read/", ReadHandler),
    route("/api/v1/notifications/archive/", ArchiveHandler),
    route("/api/v1/notifications/unarchive/", UnarchiveHandler),
    route("/api/v1/notifications/preferences/", PreferencesHandler),
    route("/api/v1/notifications/preferences/{kind}/", PreferenceHandler),
    route("/api/v1/notifications/{notification_id}/read/", ReadOneHandler),
    route("/api/v1/notifications/{notification_id}/archive/", ArchiveOneHandler),
    route("/api/v1/notifications/{notification_id}/unarchive/", UnarchiveOneHandler),
]
