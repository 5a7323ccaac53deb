"""How full the document log is, as one report: what `collab stream-health` prints and exits by,
and what the admin API's stream health answers (one implementation for both; the `stream_health`
job logs the same findings)."""

from __future__ import annotations

import dataclasses
from typing import Any

from bus.connection import NatsConnection
from bus.doc_usage import CRITICAL_AT, WARN_AT, Finding, assess, stream_usage
from bus.jetstream import DOCS_STREAM

LEVELS = ("ok", "warning", "critical")


def worst(findings: list[Finding]) -> str:
    levels = [f.level for f in findings] or ["ok"]
    return max(levels, key=LEVELS.index)


async def report(nats: NatsConnection) -> dict[str, Any]:
    """`{"stream", "level", "thresholds", "usage", "findings"}`; `usage` is the `StreamUsage`."""
    usage = await stream_usage(nats)
    findings = assess(usage)
    return {
        "stream": DOCS_STREAM,
        "level": worst(findings),
        "thresholds": {"warning": WARN_AT, "critical": CRITICAL_AT},
        "usage": usage,
        "findings": [{**dataclasses.asdict(f), "fraction": f.fraction} for f in findings],
    }
