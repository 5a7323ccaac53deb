"""JWT access and refresh tokens.

Both are HS256 with the algorithm pinned, every claim required (PyJWT checks `exp` only when asked),
and a distinct key per token purpose derived from the one secret, so a refresh token cannot be used
as an access token (or the reverse) even if a `type` check were forgotten somewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Literal

import jwt

from core.errors import Unauthorized
from server.settings import Settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "type", "iss", "aud", "fam"]
# Small clock skew between nodes must not reject a fresh token.
LEEWAY_S = 5


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    jti: str
    family_id: str
    token_type: TokenType
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    token: str
    claims: TokenClaims


def _key(settings: Settings, token_type: TokenType) -> bytes:
    return hmac.new(settings.jwt_secret.encode(), token_type.encode(), hashlib.sha256).digest()


def issue(settings: Settings, token_type: TokenType, user_id: str, family_id: str) -> IssuedToken:
    now = int(time.time())
    ttl = settings.access_token_ttl_s if token_type == "access" else settings.refresh_token_ttl_s
    claims = TokenClaims(
        user_id=user_id,
        jti=str(uuid.uuid4()),
        family_id=family_id,
        token_type=token_type,
        issued_at=now,
        expires_at=now + ttl,
    )
    payload = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": claims.user_id,
        "jti": claims.jti,
        "fam": claims.family_id,
        "type": token_type,
        "iat": claims.issued_at,
        "exp": claims.expires_at,
    }
    token = jwt.encode(payload, _key(settings, token_type), algorithm=ALGORITHM)
    return IssuedToken(token, claims)


def decode(settings: Settings, token: str, expected: TokenType) -> TokenClaims:
    """Verify a token for one purpose; every failure is the same 401 (no oracle on which check)."""
    try:
        payload = jwt.decode(
            token,
            _key(settings, expected),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY_S,
            options={"require": REQUIRED_CLAIMS},
        )
        if payload["type"] != expected:
            raise jwt.InvalidTokenError("wrong token type")
        return TokenClaims(
            user_id=str(uuid.UUID(str(payload["sub"]))),
            jti=str(payload["jti"]),
            family_id=str(payload["fam"]),
            token_type=expected,
            issued_at=int(payload["iat"]),
            expires_at=int(payload["exp"]),
        )
    except (jwt.InvalidTokenError, ValueError, TypeError, KeyError) as err:
        raise Unauthorized("invalid or expired token", code="invalid_token") from err
