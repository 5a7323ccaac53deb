"""Auth request and response bodies."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from services.passwords import MIN_PASSWORD_LENGTH

PASSWORD = validate.Length(min=MIN_PASSWORD_LENGTH, max=256)
DISPLAY_NAME = validate.Length(min=1, max=100)


class RegisterSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, validate=PASSWORD, load_only=True)
    display_name = fields.String(required=True, validate=DISPLAY_NAME)


class LoginSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=256))


class RefreshSchema(Schema):
    refresh_token = fields.String(required=True, validate=validate.Length(min=1, max=4096))


class MeUpdateSchema(Schema):
    display_name = fields.String(validate=DISPLAY_NAME)
    current_password = fields.String(validate=validate.Length(min=1, max=256))
    new_password = fields.String(validate=PASSWORD)


class UserSchema(Schema):
    id = fields.UUID(required=True)
    email = fields.Email(required=True)
    display_name = fields.String(required=True)
    # When the address was confirmed through a link sent to it; null: not (yet) verified.
    email_verified_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    refresh_expires_in = fields.Integer(required=True)


class MeUpdateResultSchema(Schema):
    user = fields.Nested(UserSchema, required=True)
    tokens = fields.Nested(TokenPairSchema, allow_none=True)


class EmptySchema(Schema):
    """A body that must be empty or `{}`."""


# A link token as minted by `services/account_tokens.py` (43 URL-safe characters); a little slack.
LINK_TOKEN = validate.Length(min=1, max=128)


class PasswordResetRequestSchema(Schema):
    email = fields.Email(required=True, validate=validate.Length(max=254))


class AcceptedSchema(Schema):
    """The same answer whether or not anything will be sent (no account-existence oracle)."""

    status = fields.String(required=True, metadata={"enum": ["accepted"]})
    detail = fields.String(required=True)


class LinkTokenQuerySchema(Schema):
    token = fields.String(required=True, validate=LINK_TOKEN)


class LinkStatusSchema(Schema):
    email = fields.Email(required=True)
    expires_at = fields.DateTime(required=True)


class PasswordResetConfirmSchema(Schema):
    token = fields.String(required=True, validate=LINK_TOKEN)
    new_password = fields.String(required=True, validate=PASSWORD, load_only=True)


class VerifyEmailConfirmSchema(Schema):
    token = fields.String(required=True, validate=LINK_TOKEN)


class SessionSchema(Schema):
    """One login session (refresh-token family) of the caller."""

    id = fields.UUID(required=True)
    user_agent = fields.String(allow_none=True, required=True)
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(
        allow_none=True, required=True, metadata={"description": "the last login or refresh"}
    )
    expires_at = fields.DateTime(
        allow_none=True, required=True, metadata={"description": "when its refresh token expires"}
    )
    current = fields.Boolean(required=True, metadata={"description": "the caller's own session"})


class SessionListSchema(Schema):
    items = fields.List(fields.Nested(SessionSchema), required=True)


class RevokedCountSchema(Schema):
    revoked = fields.Integer(required=True)


class PasswordConfirmSchema(Schema):
    """The caller's password, asked again before an irreversible account change."""

    password = fields.String(
        required=True, validate=validate.Length(min=1, max=256), load_only=True
    )
