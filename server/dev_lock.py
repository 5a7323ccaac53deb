"""One `collab dev` per data dir: an exclusive lock taken before anything in the dir is touched.

Two instances on one data dir share one Postgres cluster directory: the second one used to remove
the first one's live `postmaster.pid` (taking it for a leftover of a crash) and start a second
postmaster, and the first Postgres shut itself down a little later under its still-serving node.
The lock is `flock(2)` on `<data dir>/collab-dev.lock`: the kernel drops it when the holder exits,
however it exits (even `kill -9`), so there is never a stale lock to clean up. The holder writes its
pid and HTTP address into the file so a refused second start can say which instance to stop.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = "collab-dev.lock"


@dataclass(frozen=True)
class LockHolder:
    pid: int
    http_url: str


class DataDirBusy(RuntimeError):
    """Another running `collab dev` holds the data dir."""

    def __init__(self, data_dir: Path, holder: LockHolder | None) -> None:
        who = (
            f"collab dev pid {holder.pid} serving {holder.http_url}"
            if holder
            else "another collab dev (starting up)"
        )
        super().__init__(f"{data_dir} is in use by {who}; stop it first or pass another --data-dir")
        self.holder = holder


class DataDirLock:
    """Held from `acquire()` until `release()` or the end of the process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, holder: LockHolder) -> None:
        """Take the lock or raise `DataDirBusy` having changed nothing (the file's contents
        are rewritten only once the lock is ours)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(fd)
            raise DataDirBusy(self.path.parent, _read_holder(self.path)) from err
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None


def _read_holder(path: Path) -> LockHolder | None:
    """None while the holder has not written itself yet (it locks first, then writes)."""
    try:
        return LockHolder(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
