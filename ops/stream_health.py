"""Document stream usage against its limits, with an alert level (exit 0 ok, 1 warning, 2 critical).

Warns at 50% and turns critical at 80% of MaxBytes, MaxMsgs or MaxMsgsPerSubject (the fullest
document subject): the stream discards *new* updates at a limit, so editing of the affected
documents stops there; this is the early warning. Run it from cron/monitoring, or read the
`stream.limit_near` log lines the nodes' `stream_health` job writes on the same thresholds.
"""

from __future__ import annotations

import argparse

from bus.doc_usage import CRITICAL_AT, WARN_AT, Finding, StreamUsage, assess
from ops._runtime import add_common_arguments, ops_context, run_command
from ops.exit_codes import ExitCode
from server.settings import Settings
from services import stream_health

EXIT_CODES = {"ok": ExitCode.OK, "warning": ExitCode.WARNING, "critical": ExitCode.CRITICAL}


def configure_parser(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def render(usage: StreamUsage, findings: list[Finding]) -> str:
    lines = [
        f"COLLAB_DOCS: {usage.messages} messages, {usage.bytes} bytes, {usage.subjects} subjects,"
        f" seq {usage.first_seq}..{usage.last_seq}, discard={usage.discard}"
        f" (per subject: {usage.discard_new_per_subject})",
        f"thresholds: warning at {WARN_AT:.0%}, critical at {CRITICAL_AT:.0%}",
    ]
    for finding in findings:
        lines.append(
            f"  {finding.level.upper():8} {finding.limit}: {finding.used} of {finding.maximum}"
            f" ({finding.fraction:.1%})"
        )
    if usage.largest_subject:
        lines.append(f"  fullest subject: {usage.largest_subject} ({usage.largest_subject_msgs})")
    return "\n".join(lines)


async def health(settings: Settings) -> stream_health.StreamHealth:
    async with ops_context(settings, need_db=False) as ctx:
        return await stream_health.report(ctx.nats)


def run(args: argparse.Namespace) -> int:
    return run_command(
        args,
        health,
        need_db=False,
        render=lambda payload: render(payload.usage, assess(payload.usage)),
        exit_code=lambda payload: EXIT_CODES[payload.level],
    )
