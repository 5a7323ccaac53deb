"""Prometheus metrics of one node (scraped at `/metrics`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

HTTP_REQUESTS = Counter(
    "collab_http_requests_total",
    "HTTP requests by route, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "collab_http_request_seconds",
    "HTTP request latency by route",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OPEN_WEBSOCKETS = Gauge("collab_open_websockets", "Open WebSocket connections", ["kind"])
# Leak watch (bench/soak.py samples them with the process_* metrics prometheus_client adds): both
# must stay flat under steady load with room churn.
OPEN_ROOMS = Gauge("collab_open_rooms", "Document rooms loaded on this node")
ASYNCIO_TASKS = Gauge("collab_asyncio_tasks", "asyncio tasks alive on the node's event loop")


def watch_node(open_rooms: Callable[[], int]) -> None:
    """Report the node's loaded rooms and live tasks at scrape time (no bookkeeping on hot paths)."""
    OPEN_ROOMS.set_function(open_rooms)
    ASYNCIO_TASKS.set_function(_live_tasks)


def _live_tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped outside the loop's thread
        return 0


# Background jobs (server/scheduler.py records them for every job, whatever the job does).
JOB_RUNS = Counter(
    "collab_job_runs_total",
    "Job runs on this node by outcome (ok, failed, unavailable, locked: another node ran it,"
    " paused: skipped because an admin paused the job)",
    ["job", "outcome"],
)
JOB_FAILURES = Counter("collab_job_failures_total", "Job runs that raised", ["job"])
JOB_DURATION = Histogram(
    "collab_job_duration_seconds",
    "Wall time of the job runs this node made (lock held)",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
JOB_ITEMS = Counter(
    "collab_job_items_processed_total",
    "Items a job handled, by kind (the counts of its history row)",
    ["job", "item"],
)

# The projection worker (services/projection_worker.py): a backlog means refreshes lag behind
# edits; failures are workers killed (died, hung past the timeout, abandoned by a cancelled caller).
PROJECTION_WORKER_CALLS = Gauge(
    "collab_projection_worker_calls",
    "Projection computations handed to the worker process and not finished (running + queued)",
)
PROJECTION_WORKER_FAILURES = Counter(
    "collab_projection_worker_failures_total",
    "Projection worker processes lost, by reason (died, hung, abandoned)",
    ["reason"],
)
# The projection refresher (services/projection_refresher.py): where each refresh read the
# document from -- `room`: the entries after its last state from the room's tail, no NATS read;
# `log`: the log after its last state; `full`: snapshot + log (a document's first refresh here).
PROJECTION_REFRESHES = Counter(
    "collab_projection_refreshes_total",
    "Projection refreshes by where the document was read from (room, log, full)",
    ["read"],
)
