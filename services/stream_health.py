"""How full the document log is, as one report: what `collab stream-health` prints and exits by,
and what the admin API's stream health answers (one implementation for both; the `stream_health`
job logs the same findings)."""

from __future__ import annotations

from dataclasses import dataclass

from bus.connection import NatsConnection
from bus.doc_usage import CRITICAL_AT, WARN_AT, Finding, StreamUsage, assess, stream_usage
from bus.jetstream import DOCS_STREAM

LEVELS = ("ok", "warning", "critical")


def worst(findings: list[Finding]) -> str:
    levels = [f.level for f in findings] or ["ok"]
    return max(levels, key=LEVELS.index)


@dataclass(frozen=True)
class Thresholds:
    """The used fractions of a limit from which a finding is a warning, or critical."""

    warning: float
    critical: float


@dataclass(frozen=True)
class LimitUse:
    """A `Finding` with its fraction as a field: what the report shows (`ops`' JSON output is
    `dataclasses.asdict`, which leaves properties out)."""

    level: str  # "ok" | "warning" | "critical"
    limit: str
    used: int
    maximum: int
    fraction: float

    @classmethod
    def of(cls, finding: Finding) -> LimitUse:
        return cls(finding.level, finding.limit, finding.used, finding.maximum, finding.fraction)


@dataclass(frozen=True)
class StreamHealth:
    stream: str
    level: str  # the worst finding's
    thresholds: Thresholds
    usage: StreamUsage
    findings: list[LimitUse]


async def report(nats: NatsConnection) -> StreamHealth:
    """The stream's usage, each configured limit's use, and the worst level among them."""
    usage = await stream_usage(nats)
    findings = assess(usage)
    return StreamHealth(
        stream=DOCS_STREAM,
        level=worst(findings),
        thresholds=Thresholds(WARN_AT, CRITICAL_AT),
        usage=usage,
        findings=[LimitUse.of(f) for f in findings],
    )
