"""Route path templates (`/api/v1/invitations/{token}/accept/`), and what a log may show of a URI.

One place turns a template into the pattern Tornado routes with, so the same pattern can find the
secret segments of a request path for the logs. Tokens reach URIs two ways: `?token=` on WebSocket
handshakes (browsers cannot set headers there) and path segments such as the invitation link. Every
place that writes a request's URI to a log goes through `safe_uri`, so neither reaches a log file
at any level. Secret segments are found from the template's parameter names, not guessed from what
a value looks like.
"""

from __future__ import annotations

import functools
import re

_PARAM = re.compile(r"\{(\w+)\}")
# Query keys and path parameters whose values are credentials.
SECRET_NAMES = frozenset({"token", "access_token", "refresh_token"})
REDACTED = "[REDACTED]"
_SECRET_QUERY = re.compile(
    r"((?:^|&)(?:" + "|".join(sorted(SECRET_NAMES)) + r")=)[^&]*", re.IGNORECASE
)


def template_params(template: str) -> list[str]:
    return _PARAM.findall(template)


def template_regex(template: str) -> str:
    """The routing pattern of a template: each `{name}` is a named group of one path segment; the
    trailing slash is optional."""
    return _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template.rstrip("/")) + "/?"


@functools.lru_cache(maxsize=512)
def _secret_path_pattern(template: str) -> re.Pattern[str] | None:
    if not SECRET_NAMES.intersection(template_params(template)):
        return None
    return re.compile(template_regex(template))


def _redact_path(path: str, template: str | None) -> str:
    pattern = _secret_path_pattern(template) if template else None
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        return path
    spans = sorted(match.span(name) for name in SECRET_NAMES if name in match.groupdict())
    for start, end in reversed(spans):
        path = path[:start] + REDACTED + path[end:]
    return path


def safe_uri(uri: str, template: str | None = None) -> str:
    """`uri` with the values of secret query keys, and of `template`'s secret path parameters,
    replaced by `[REDACTED]`."""
    path, sep, query = uri.partition("?")
    return _redact_path(path, template) + sep + _SECRET_QUERY.sub(rf"\1{REDACTED}", query)
