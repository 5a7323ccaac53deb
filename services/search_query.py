"""What a search box sends, turned into words Postgres can match safely.

The query is never handed to Postgres' query parser as the user typed it: operators (`&`, `|`,
`!`, `:`, `*`, quotes, parentheses) would be syntax errors or let a query express more than
"these words". It is split into Unicode words here; the SQL quotes each word as a lexeme
(`quote_literal`) and ANDs them, the last one as a prefix (search as you type).
"""

from __future__ import annotations

import re
import unicodedata

from core.errors import ValidationFailed

MAX_QUERY_CHARS = 200
MAX_WORDS = 12
MAX_WORD_CHARS = 64

_WORD = re.compile(r"\w+")


def query_words(raw: str) -> list[str]:
    """The words of `raw` (NFC-normalised, at most `MAX_WORDS`); a 400 when there is nothing to
    search for, it is too long, or it holds control characters (NUL included)."""
    if len(raw) > MAX_QUERY_CHARS:
        raise ValidationFailed(
            f"the query is longer than {MAX_QUERY_CHARS} characters", fields={"q": ["too long"]}
        )
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        raise ValidationFailed(
            "the query holds control characters", fields={"q": ["control characters"]}
        )
    words = [w[:MAX_WORD_CHARS] for w in _WORD.findall(unicodedata.normalize("NFC", raw))]
    if not words:
        raise ValidationFailed("the query has no words to search for", fields={"q": ["no words"]})
    return words[:MAX_WORDS]
