"""CPU time and memory of processes, read from /proc, and CPU pinning.

The benchmark's throughput figure is deliveries per second of *CPU time* (utime + stime of every
thread, which `/proc/<pid>/stat` sums for the whole process), not of wall time: on a 2-core box
shared by the servers and the client, wall-clock rates mostly measure contention.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# /proc/<pid>/stat fields after the ")" that ends the command name: state is field 3, so utime
# (field 14) and stime (field 15) are at these offsets in the remainder.
_UTIME_INDEX = 14 - 3
_STIME_INDEX = 15 - 3
_PPID_INDEX = 4 - 3


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name may contain spaces and parentheses; it ends at the last ")".
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process (all its threads) has used so far."""
    fields = _stat_fields(pid)
    return (int(fields[_UTIME_INDEX]) + int(fields[_STIME_INDEX])) / CLOCK_TICKS_PER_S


def tree_cpu_seconds(pid: int) -> float:
    """`cpu_seconds` of the process and all its descendants (`collab serve --processes N`: the
    supervisor and its workers); children that exit meanwhile drop out, so read it while they
    live."""
    total = 0.0
    for member in [pid, *descendants(pid)]:
        try:
            total += cpu_seconds(member)
        except OSError:
            continue  # exited while we looked
    return total


def _status_kib(pid: int, key: str, path: str | None = None) -> int:
    """A numeric field of /proc/<pid>/status (kB for memory fields, a count for others)."""
    for line in Path(path or f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the highest resident set size the process has had (MiB)."""
    return _status_kib(pid, "VmHWM") / 1024


def rss_mb(pid: int) -> float:
    """VmRSS: resident set size now (MiB)."""
    return _status_kib(pid, "VmRSS") / 1024


def reset_peak_rss(pid: int) -> bool:
    """Make VmHWM start again from the current VmRSS (`5` into /proc/<pid>/clear_refs, Linux ≥
    4.0), so a later `peak_rss_mb` is the peak of what happened since, not of start-up; False if
    the kernel or permissions refuse (the peak then covers the process's whole life)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def descendants(pid: int) -> list[int]:
    """Child processes, recursively (Postgres backends under the postmaster)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int(_stat_fields(int(entry.name))[_PPID_INDEX])
        except (OSError, ValueError):
            continue  # exited while we looked
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def server_and_client_cpus() -> tuple[set[int], set[int]] | None:
    """(server CPUs, client CPUs) when this machine lets us split them, else None.

    The servers under test get the first allowed CPU and the load-generating client the next, so
    the client's work never runs on the core whose CPU time is being measured.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    return {allowed[0]}, {allowed[1]}


def pin(pids: Iterable[int], cpus: set[int]) -> None:
    """Restrict every thread of each process (and of its descendants) to `cpus`.

    Threads and children created later inherit the mask, so pinning a process after start-up
    covers its future worker threads and Postgres backends too.
    """
    for pid in pids:
        for process in [pid, *descendants(pid)]:
            try:
                threads = [int(tid) for tid in os.listdir(f"/proc/{process}/task")]
            except FileNotFoundError:
                continue
            for tid in threads:
                try:
                    os.sched_setaffinity(tid, cpus)
                except ProcessLookupError:
                    continue


def system_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (/proc/stat: everything but idle and iowait).

    The difference over a window, minus what the measured processes used, is the CPU that *other*
    work on the box took while we measured: on a shared machine it explains a noisy run.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS_PER_S


def voluntary_switches(pid: int) -> int:
    """Times the process's threads went to sleep waiting (on epoll, a lock…), all threads summed.

    Per edit it counts event-loop wakeups: at light load each one costs a trip through the
    selector, callbacks and cold caches, which is most of a Python server's cost per update.
    """
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, KeyError):
            total += _status_kib(pid, "voluntary_ctxt_switches", f"/proc/{pid}/task/{tid}/status")
    return total
