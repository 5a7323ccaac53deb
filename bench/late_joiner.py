"""R17-lite: late joiner of a long-edited document, and memory after room churn, ours vs reference.

    python bench/late_joiner.py [--updates 10000] [--cycles 1000] [--servers reference,ours]

Per variant (a fresh server process, pinned like bench/run.py):
1. fill: one writer makes `--updates` separate updates to one document (a second client confirms
   it holds them all);
2. cold join: every client gone, a fresh client joins. Ours unloads the idle room (unload grace
   0.2 s here), so the join loads the room: "ours (snapshot)" (default behaviour) from the
   Postgres snapshot the room wrote when it unloaded; "ours (replay)" (snapshot job off and no
   snapshot at unload, patched: the state after a node crash) from the JetStream subject alone,
   all N updates. The reference keeps every document in memory (no persistence): its cold join
   is the first join after the fill;
3. warm join: the same with one client holding the room open;
4. churn (reference and "ours (snapshot)"): connect / sync / one edit / disconnect, `--cycles` times,
   each cycle on a document of its own, so each loads and unloads a room on ours (counted in its
   log); VmRSS after a warm-up round (baseline) vs after the churn. R17's bar: within +10 %. The
   reference never unloads a document (no persistence), so its growth is its design, not a leak.
Prints a markdown table; writes bench/results/late_joiner.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/late_joiner.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procstat
from bench.run import servers_to_run
from bench.servers import (
    BENCH_DIR,
    BenchError,
    OurStack,
    ServerProcess,
    ensure_node_modules,
    is_ours,
    new_rooms,
    run_node_result,
    server_under_test,
    token_for,
)

DRIVER = BENCH_DIR / "late_joiner.mjs"
DEFAULT_RESULTS = BENCH_DIR / "results" / "late_joiner.json"
#: Joins per variant; medians are reported. A cold join is a new driver process after every
#: client left, so cold joins are fewer.
JOINS = 5
COLD_JOINS = 3
#: Warm-up cycles run before the RSS baseline is read (allocator pools, caches and JIT settle).
#: Every cycle uses a document of its own, so each one loads and unloads a room on ours.
CHURN_WARMUP_CYCLES = 100
CHURN_ROUNDS = 5
#: R17: RSS after churn within +10 % of the baseline.
RSS_GROWTH_LIMIT = 0.10
#: Idle rooms unload this soon on ours here, and the script waits SETTLE_S for that (and for
#: freed memory) after the last client left.
UNLOAD_GRACE_S = 0.2
SETTLE_S = 2.0
SNAPSHOT_WAIT_S = 120.0
#: Ours for this script only: the fill writes far faster than a person types (the per-socket
#: token bucket would throttle it), and idle rooms unload at once so every cold join and churn
#: cycle really loads a room.
#: (Not 0: the engine starts a room's unload clock as its load completes, before the joiner that
#: asked for it has joined; a zero grace unloads the room under that joiner -- see FINDINGS.md.)
#: INFO logging lets the script count room loads and unloads in the server log.
OUR_ENV = {
    "COLLAB_WS_RATE_PER_S": "5000",
    "COLLAB_WS_BURST": "5000",
    "COLLAB_ROOM_UNLOAD_GRACE_S": str(UNLOAD_GRACE_S),
    "COLLAB_LOG_LEVEL": "INFO",
}


@dataclass(frozen=True)
class Variant:
    label: str
    server: str
    env: dict[str, str] = field(default_factory=dict)
    #: Wait for a snapshot written after the fill before the cold joins.
    snapshot: bool = False
    churn: bool = False
    #: bench/patched_serve.py patches for this variant.
    patches: str = ""


VARIANTS = (
    Variant("reference", "reference", churn=True),
    # The worst case: nothing compacted the document (snapshot job off, no snapshot at unload, as
    # after a node crash), so a cold join replays every update from JetStream.
    Variant(
        "ours (replay)",
        "ours",
        {**OUR_ENV, "COLLAB_SCHEDULER_ENABLED": "0"},
        patches="no-unload-snapshot",
    ),
    # Default behaviour: the room snapshots the document when it unloads.
    Variant("ours (snapshot)", "ours", OUR_ENV, snapshot=True, churn=True),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--fill-rate", type=int, default=1000, help="updates/s while filling")
    parser.add_argument("--cycles", type=int, default=1000, help="room load/unload cycles")
    parser.add_argument("--servers", default="auto", help="reference,ours | auto (ours if built)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per driver step, s")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="FILE",
        help="ours (replay): write the allocations the measured churn left behind to FILE",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_RESULTS)
    return parser.parse_args(argv)


class Steps:
    """The driver steps against one running server."""

    def __init__(
        self,
        server: ServerProcess,
        stack: OurStack | None,
        args: argparse.Namespace,
        cpus: set[int] | None,
    ) -> None:
        self.server = server
        self.stack = stack
        self.args = args
        self.cpus = cpus

    def drive(self, mode: str, *extra: str) -> dict[str, Any]:
        argv = ["--mode", mode, "--url", self.server.ws_base, "--timeout", str(self.args.timeout)]
        token = token_for(self.server, self.stack)
        if token:
            argv += ["--token", token]
        return run_node_result(DRIVER, [*argv, *extra], self.cpus, self.args.timeout + 30)

    def room_events(self) -> dict[str, int]:
        return count_room_events(self.server.log)

    def late_joins(self, variant: Variant) -> dict[str, Any]:
        room = new_rooms(self.server, self.stack, 1)[0]
        updates = ["--room", room, "--updates", str(self.args.updates)]
        fill = self.drive("fill", *updates, "--rate", str(self.args.fill_rate))
        snapshot_seq, snapshot = None, {}
        if variant.snapshot:
            assert self.stack is not None
            snapshot_seq = self.stack.wait_snapshot(room, SNAPSHOT_WAIT_S)
            snapshot = self.stack.snapshot_form(room)
        cold = []
        for _ in range(COLD_JOINS):
            time.sleep(SETTLE_S)  # every client left: ours unloads the room
            cold.append(self.drive("join", *updates, "--repeat", "1")["median_ms"])
        warm = self.drive("join", *updates, "--repeat", str(JOINS), "--hold")
        return {
            "fill_ms": fill["fill_ms"],
            "snapshot_seq": snapshot_seq,
            "snapshot": snapshot,
            "cold_join_ms": cold,
            "cold_join_median_ms": sorted(cold)[len(cold) // 2],
            "warm_join_ms": warm["join_ms"],
            "warm_join_median_ms": warm["median_ms"],
        }

    def churn_round(self, cycles: int) -> dict[str, Any]:
        rooms_file = self.server.log.with_name(f"churn-rooms-{time.monotonic_ns()}.txt")
        rooms_file.write_text("\n".join(new_rooms(self.server, self.stack, cycles)) + "\n")
        result = self.drive("churn", "--rooms-file", str(rooms_file), "--cycles", str(cycles))
        time.sleep(SETTLE_S)
        return result

    def churn(self) -> dict[str, Any]:
        self.churn_round(CHURN_WARMUP_CYCLES)
        baseline = procstat.rss_mb(self.server.pid)
        loads_before = self.room_events()
        tracing = self.args.tracemalloc is not None and is_ours(self.server.name)
        if tracing:
            os.kill(self.server.pid, signal.SIGUSR1)
        # In rounds, with RSS after each: a leak grows linearly, allocator retention levels off.
        curve, failures, churn_ms = [], 0, 0
        for _ in range(CHURN_ROUNDS):
            result = self.churn_round(self.args.cycles // CHURN_ROUNDS)
            failures += result["failures"]
            churn_ms += result["churn_ms"]
            curve.append(round(procstat.rss_mb(self.server.pid), 1))
        if tracing:
            os.kill(self.server.pid, signal.SIGUSR2)
            time.sleep(SETTLE_S)  # the snapshot diff takes a moment
        after = procstat.rss_mb(self.server.pid)
        loads_after = self.room_events()
        return {
            "cycles": self.args.cycles,
            "failures": failures,
            "churn_ms": churn_ms,
            "rss_curve_mb": curve,
            "room_loads": loads_after["room.loaded"] - loads_before["room.loaded"],
            "room_unloads": loads_after["room.unloaded"] - loads_before["room.unloaded"],
            "rss_baseline_mb": round(baseline, 1),
            "rss_after_mb": round(after, 1),
            "rss_growth": round(after / baseline - 1, 3),
            "peak_rss_mb": round(procstat.peak_rss_mb(self.server.pid), 1),
        }


def count_room_events(log: Path) -> dict[str, int]:
    """`room.loaded` / `room.unloaded` lines in our server's (INFO) log; zeros for the reference."""
    counts = {"room.loaded": 0, "room.unloaded": 0}
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            for event in counts:
                if f'"event": "{event}"' in line:
                    counts[event] += 1
    return counts


def run_all(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    split = None if args.no_pin else procstat.server_and_client_cpus()
    server_cpus, client_cpus = split if split else (None, None)
    servers = servers_to_run(args.servers)
    ensure_node_modules()
    stack = OurStack(workdir, server_cpus) if "ours" in servers else None
    rows = []
    try:
        if stack:
            stack.start()
        for variant in (v for v in VARIANTS if v.server in servers):
            print(f"… {variant.label}", file=sys.stderr, flush=True)
            env, module = dict(variant.env), "server.cli"
            if variant.patches:
                env["COLLAB_BENCH_PATCHES"] = variant.patches
                module = "bench.patched_serve"
            if args.tracemalloc and variant.churn and is_ours(variant.server):
                env["COLLAB_BENCH_TRACEMALLOC_OUT"] = str(args.tracemalloc.resolve())
                module = "bench.patched_serve"
            with server_under_test(
                variant.server, stack, workdir, server_cpus, env=env, module=module
            ) as server:
                steps = Steps(server, stack, args, client_cpus)
                row = {"variant": variant.label, "updates": args.updates}
                row.update(steps.late_joins(variant))
                row["churn"] = steps.churn() if variant.churn else None
                rows.append(row)
    finally:
        if stack:
            stack.stop()
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| server | updates | fill s | cold join ms (median of 3) | warm join ms (median of 5) "
        "| churn cycles (room loads) | RSS baseline MB | RSS after MB | growth |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        churn = row["churn"]
        cells = [
            row["variant"],
            str(row["updates"]),
            f"{row['fill_ms'] / 1000:.1f}",
            str(row["cold_join_median_ms"]),
            str(row["warm_join_median_ms"]),
        ]
        if churn is None:
            cells += ["–"] * 4
        else:
            growth = f"{churn['rss_growth']:+.1%}"
            if churn["rss_growth"] > RSS_GROWTH_LIMIT:
                growth += " (over +10 %)"
            cells += [
                f"{churn['cycles']} ({churn['room_loads']})",
                str(churn["rss_baseline_mb"]),
                str(churn["rss_after_mb"]),
                growth,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        try:
            rows = run_all(args, Path(tmp))
        except BenchError as err:
            print(f"late-joiner bench failed: {err}", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python", "bench/late_joiner.py", *sys.argv[1:]])
    args.output.write_text(json.dumps({"command": command, "rows": rows}, indent=2) + "\n")
    print(markdown_table(rows))
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
