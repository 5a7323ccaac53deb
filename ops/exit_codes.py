"""Exit statuses of every `collab` command, one table (the README lists the same).

0–2 follow the monitoring convention (Nagios/Icinga: ok, warning, critical), so `stream-health`
and `verify` plug into a check runner as they are. Everything else is an error *running* the
command and uses the BSD sysexits numbers, so a cron wrapper can tell "the check found a problem"
(2) from "the check could not run" (64+) — a typo must never look like a critical finding.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    WARNING = 1  # a check is near a limit (stream-health ≥ 50 %)
    CRITICAL = 2  # a check failed: stream-health ≥ 80 %, verify found a mismatch
    USAGE = 64  # bad arguments: unknown option, malformed id
    NOT_FOUND = 66  # a named document or backup does not exist
    UNAVAILABLE = 69  # Postgres or NATS did not answer
    SOFTWARE = 70  # an unexpected error (a bug): traceback on stderr
    CANT_CREATE = 73  # backup target not empty, restore target already holds data
    IO_ERROR = 74  # a backup or restore step failed (pg_dump, pg_restore, a stream transfer)
    IN_USE = 75  # collab dev: the data dir or the HTTP port is held by another process
    CONFIG = 78  # no service URLs and no running `collab dev` in the data dir
