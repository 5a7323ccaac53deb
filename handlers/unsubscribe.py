"""`/api/v1/notifications/unsubscribe/?token=`: the one-click unsubscribe link of every
notification mail (RFC 8058). No sign-in: the signed token is the authority.

A GET (a person clicking the link in the mail; or a mail scanner prefetching it) changes nothing
and shows a confirmation page; a POST unsubscribes — from a mail client's `List-Unsubscribe-Post`
(form body `List-Unsubscribe=One-Click`), the page's button (the same form body) or an API client
(empty or `{}` body, JSON answer)."""

from __future__ import annotations

from urllib.parse import urlencode

from core.errors import ValidationFailed
from handlers.base import BaseHandler
from handlers.routing import route
from handlers.schemas.auth import EmptySchema
from handlers.schemas.unsubscribe import UnsubscribeQuerySchema, UnsubscribeResultSchema
from services import notification_mail
from services.notification_mail import UnsubscribeLink

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"


class UnsubscribeHandler(BaseHandler):
    openapi = {
        "get": {
            "summary": "The unsubscribe link of a notification mail: a confirmation page (HTML);"
            " changes nothing",
            "query": UnsubscribeQuerySchema,
            "html": True,
            "auth": False,
        },
        "post": {
            "summary": "One-click unsubscribe (RFC 8058): the link's kinds stop emailing (they"
            " become in_app). Body: empty, `{}`, or the form `List-Unsubscribe=One-Click`"
            " (answered with an HTML page when the client accepts text/html)",
            "query": UnsubscribeQuerySchema,
            "response": UnsubscribeResultSchema,
            "auth": False,
        },
    }

    async def get(self) -> None:
        token = self.load_query(UnsubscribeQuerySchema())["token"]
        found = await notification_mail.describe_unsubscribe(self.ctx.db, self.ctx.settings, token)
        self._page(found, token, done=False)

    async def post(self) -> None:
        token = self.load_query(UnsubscribeQuerySchema())["token"]
        form = self._one_click_form()
        if not form:
            self.load_body(EmptySchema())
        result = await notification_mail.unsubscribe(self.ctx.db, self.ctx.settings, token)
        if form and self.wants_page():
            self._page(result, token, done=True)
            return
        self.send(UnsubscribeResultSchema().dump(result))

    def _one_click_form(self) -> bool:
        """True for RFC 8058's form body; another form body is a 400."""
        if not self.is_form():
            return False
        if b"".join(self._body_chunks).strip() != ONE_CLICK_BODY:
            raise ValidationFailed(
                "the form body must be List-Unsubscribe=One-Click",
                fields={"_body": ["not List-Unsubscribe=One-Click"]},
            )
        return True

    def _page(self, found: UnsubscribeLink, token: str, *, done: bool) -> None:
        self.send_html(
            "unsubscribe_page",
            {
                "subject": "Unsubscribed" if done else "Unsubscribe",
                "email": found.email,
                "labels": ", ".join(kind.label for kind in found.kinds),
                "done": done,
                "action": f"{self.request.path}?{urlencode({'token': token})}",
            },
        )


ROUTES = [route("/api/v1/notifications/unsubscribe/", UnsubscribeHandler)]
