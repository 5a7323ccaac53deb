"""How full the document log is: per-subject message counts and stream usage against its limits.

The snapshot job finds dirty documents from the per-subject counts (one paged JetStream API call
for every document at once), and `collab stream-health` / the health job compare usage with the
configured limits so an operator hears about it long before discard-new starts refusing updates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import nats.errors

from bus.connection import NatsConnection
from bus.jetstream import DOCS_STREAM
from core.errors import Unavailable

DOC_UPDATE_FILTER = "collab.doc.*.update"
API_TIMEOUT_S = 5.0
# nats-server answers at most this many subjects per STREAM.INFO page (JSMaxSubjectDetails);
# the loop below follows `offset` until `total` is reached, with a hard stop as a safety net.
MAX_SUBJECT_PAGES = 1000


def doc_id_of(subject: str) -> str | None:
    parts = subject.split(".")
    if len(parts) != 4 or parts[0] != "collab" or parts[1] != "doc" or parts[3] != "update":
        return None
    return parts[2]


async def _stream_info(nats_conn: NatsConnection, request: dict[str, object]) -> dict:
    subject = f"$JS.API.STREAM.INFO.{DOCS_STREAM}"
    try:
        msg = await nats_conn.nc.request(
            subject, json.dumps(request).encode(), timeout=API_TIMEOUT_S
        )
    except (nats.errors.Error, TimeoutError) as err:
        raise Unavailable("document log unavailable") from err
    body = json.loads(msg.data)
    if "error" in body:
        raise Unavailable(f"stream info failed: {body['error'].get('description')}")
    return body


async def subject_counts(nats_conn: NatsConnection) -> dict[str, int]:
    """Messages currently stored per document subject (subjects with none are absent)."""
    counts: dict[str, int] = {}
    offset = 0
    for _page in range(MAX_SUBJECT_PAGES):
        body = await _stream_info(
            nats_conn, {"subjects_filter": DOC_UPDATE_FILTER, "offset": offset}
        )
        page = body.get("state", {}).get("subjects") or {}
        counts.update(page)
        offset += len(page)
        if not page or offset >= int(body.get("total", 0)):
            break
    return counts


@dataclass(frozen=True)
class StreamUsage:
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    subjects: int
    max_bytes: int
    max_msgs: int
    max_msgs_per_subject: int
    max_msg_size: int
    discard: str
    discard_new_per_subject: bool
    # The fullest document subject (by message count): what MaxMsgsPerSubject will hit first.
    largest_subject: str | None = None
    largest_subject_msgs: int = 0


async def stream_usage(nats_conn: NatsConnection, *, with_subjects: bool = True) -> StreamUsage:
    body = await _stream_info(nats_conn, {})
    state, config = body.get("state", {}), body.get("config", {})
    largest, largest_msgs = None, 0
    if with_subjects:
        counts = await subject_counts(nats_conn)
        if counts:
            largest, largest_msgs = max(counts.items(), key=lambda item: item[1])
    return StreamUsage(
        messages=int(state.get("messages", 0)),
        bytes=int(state.get("bytes", 0)),
        first_seq=int(state.get("first_seq", 0)),
        last_seq=int(state.get("last_seq", 0)),
        subjects=int(state.get("num_subjects", 0)),
        max_bytes=int(config.get("max_bytes", -1)),
        max_msgs=int(config.get("max_msgs", -1)),
        max_msgs_per_subject=int(config.get("max_msgs_per_subject", -1)),
        max_msg_size=int(config.get("max_msg_size", -1)),
        discard=str(config.get("discard", "")),
        discard_new_per_subject=bool(config.get("discard_new_per_subject", False)),
        largest_subject=largest,
        largest_subject_msgs=largest_msgs,
    )


# Alert thresholds (fractions of a limit): warn early enough that an operator can raise a limit or
# fix a stuck snapshot job before discard-new refuses updates.
WARN_AT = 0.5
CRITICAL_AT = 0.8


@dataclass(frozen=True)
class Finding:
    level: str  # "ok" | "warning" | "critical"
    limit: str
    used: int
    maximum: int

    @property
    def fraction(self) -> float:
        return self.used / self.maximum if self.maximum > 0 else 0.0


def assess(usage: StreamUsage) -> list[Finding]:
    """Each configured limit with how much of it is used; unlimited (-1/0) limits are skipped."""
    pairs = [
        ("max_bytes", usage.bytes, usage.max_bytes),
        ("max_msgs", usage.messages, usage.max_msgs),
        ("max_msgs_per_subject", usage.largest_subject_msgs, usage.max_msgs_per_subject),
    ]
    findings = []
    for name, used, maximum in pairs:
        if maximum <= 0:
            continue
        fraction = used / maximum
        level = (
            "critical" if fraction >= CRITICAL_AT else "warning" if fraction >= WARN_AT else "ok"
        )
        findings.append(Finding(level, name, used, maximum))
    return findings
