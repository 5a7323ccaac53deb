"""WebSocket benchmark: our server (with JetStream durability) vs the reference y-websocket server.

    python bench/run.py            # 10×10 and 50×20 rooms×clients, 20 edits/s per writer, 20 s each
    python bench/run.py --quick    # a smoke run of a few seconds per scenario

For each scenario and each server: start a fresh server process (pinned to one core when the
machine has two), run `bench/ws_bench.mjs` (all clients in one Node process, pinned to the other
core), sample the servers' CPU time from /proc when the driver starts and ends its measured window,
read peak RSS, and stop the server. Prints a side-by-side markdown table and writes the results JSON
(default `bench/results/latest.json`). Loopback only; every child process dies with us.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procstat
from bench.servers import (
    BENCH_DIR,
    DRIVER_SCRIPT,
    BenchError,
    OurStack,
    ServerProcess,
    child_preexec,
    ensure_node_modules,
    is_ours,
    new_rooms,
    node_binary,
    server_under_test,
    token_for,
)

DEFAULT_RESULTS = BENCH_DIR / "results" / "latest.json"
SERVERS = ("reference", "ours")
#: Seconds the driver may take beyond its own connect + warm-up + measure + drain budget.
DRIVER_MARGIN_S = 60.0
#: The p99 target (issue 5 item 10 at 10 x 10, issue 15 at every scenario), checked in the
#: printed summary.
TARGET_P99_RATIO = 1.5
#: The box is shared (other engineers' test runs): before a run, wait while other work keeps more
#: than this share of one core busy, sampled over QUIET_SAMPLE_S.
QUIET_BUSY_CORES = 0.3
QUIET_SAMPLE_S = 1.0


@dataclass(frozen=True)
class Scenario:
    rooms: int
    clients: int

    @property
    def label(self) -> str:
        return f"{self.rooms}x{self.clients}"

    @classmethod
    def parse(cls, text: str) -> Scenario:
        rooms, clients = text.lower().split("x")
        return cls(int(rooms), int(clients))


@dataclass(frozen=True)
class Timing:
    rate: float
    warmup_s: float
    duration_s: float
    drain_s: float
    connect_timeout_s: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (3 s per scenario)")
    parser.add_argument("--scenarios", default="10x10,50x20", help="ROOMSxCLIENTS,… ")
    parser.add_argument("--servers", default="auto", help="reference,ours | auto (ours if built)")
    parser.add_argument("--rate", type=float, default=20.0, help="edits/s per writer")
    parser.add_argument("--duration", type=float, default=None, help="measured seconds (20)")
    parser.add_argument("--warmup", type=float, default=None, help="warm-up seconds (5)")
    parser.add_argument("--drain", type=float, default=10.0, help="max wait for late deliveries")
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    parser.add_argument(
        "--quiet-wait", type=float, default=None, help="max s to wait for an idle box (60)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario and server; medians reported"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin server/client to cores")
    parser.add_argument("--output", type=Path, default=DEFAULT_RESULTS, help="results JSON path")
    parser.add_argument(
        "--callgrind",
        type=Path,
        default=None,
        metavar="DIR",
        help="run our server under callgrind, instrumented over each measured window only; "
        "reports server_instructions_per_edit / _per_delivery (use a light scenario)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample our server with py-spy during each measured window; raw stacks into DIR",
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        metavar="DIR",
        help="cProfile our server over each measured window; pstats files into DIR",
    )
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        default=None,
        metavar="DIR",
        help="our server's Python allocations alive with every client connected that were not "
        "before they connected (tracemalloc, grouped by site); text files into DIR",
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 20.0
    if args.warmup is None:
        args.warmup = 1.0 if args.quick else 5.0
    if args.quiet_wait is None:
        args.quiet_wait = 0.0 if args.quick else 60.0
    return args


def our_ws_endpoint_built() -> bool:
    """Whether this checkout serves /ws/documents/… (the engine may not have landed yet)."""
    from server.app import all_routes

    return any(route.template.startswith("/ws/documents/") for route in all_routes())


def servers_to_run(spec: str) -> list[str]:
    """`reference`, `ours`, and ours with experimental patches (`ours+direct-frame+no-coalesce`,
    see bench/patched_serve.py)."""
    if spec == "auto":
        return ["reference", "ours"] if our_ws_endpoint_built() else ["reference"]
    names = [name.strip() for name in spec.split(",") if name.strip()]
    for name in names:
        base, *patches = name.split("+")
        if base not in SERVERS or (patches and base != "ours"):
            raise SystemExit(f"unknown server {name!r}: reference, ours or ours+<patch>…")
        unknown = set(patches) - set(known_patches())
        if unknown:
            raise SystemExit(f"unknown patch(es) {sorted(unknown)}; known: {known_patches()}")
    return names


def known_patches() -> list[str]:
    from bench.patched_serve import PATCHES

    return list(PATCHES)


def our_launch(name: str, profiler: Profiler | None) -> tuple[dict[str, str], str]:
    """(extra env, module) to start our server variant `name` with `profiler`."""
    patches = name.split("+")[1:]
    env = profiler.env() if profiler else {}
    if not patches and not isinstance(profiler, CProfile | Tracemalloc):
        return env, "server.cli"
    return {**env, "COLLAB_BENCH_PATCHES": ",".join(patches)}, "bench.patched_serve"


# --------------------------------------------------------------------------------------------------
# One driver run
# --------------------------------------------------------------------------------------------------


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far per role; the server's includes its worker processes, if any."""
    return {
        role: procstat.tree_cpu_seconds(pid) if role == "server" else procstat.cpu_seconds(pid)
        for role, pid in pids.items()
    }


def wait_for_quiet(max_wait_s: float) -> float:
    """Wait (up to `max_wait_s`) until the box is idle apart from us; returns the last busy share.

    The servers under test are idle between runs, so busy CPU here is someone else's work.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = procstat.system_busy_seconds()
        time.sleep(QUIET_SAMPLE_S)
        busy = (procstat.system_busy_seconds() - before) / QUIET_SAMPLE_S
        if busy <= QUIET_BUSY_CORES or time.monotonic() >= deadline:
            return round(busy, 2)
        print(f"  box busy ({busy:.2f} cores used by other work); waiting", file=sys.stderr)


class PySpy:
    """`py-spy record --pid` on our server for one measured window (collapsed stacks; time inside
    pycrdt's Rust is charged to the Python line that called it). It runs on the client's core, and
    `--nonblocking` keeps it from pausing the server, but sampling still costs the server a little:
    profiled runs are for finding hot spots, not for the table. py-spy samples *wall* time of a
    runnable thread: on a contended core it also counts time spent waiting for the CPU."""

    RATE_HZ = 250

    def __init__(self, out_dir: Path, label: str, duration_s: float, cpus: set[int] | None):
        self.output = out_dir / f"{label}.txt"
        self.duration_s = duration_s
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {}

    def start(self, pid: int) -> None:
        argv = ["py-spy", "record", "--pid", str(pid), "--format", "raw"]
        argv += ["--nonblocking", "--rate", str(self.RATE_HZ), "--output", str(self.output)]
        argv += ["--duration", str(max(1, round(self.duration_s)))]
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_preexec(self.cpus),
        )

    def stop(self, pid: int) -> None:
        """py-spy stops by itself after `duration_s`."""

    def finish(self) -> None:
        if self.proc is not None:
            self.proc.wait(self.duration_s + DRIVER_MARGIN_S)


class CProfile:
    """Our server under bench/patched_serve.py, cProfiled exactly over the measured window."""

    #: How long the server may take to write its stats after SIGUSR2.
    DUMP_TIMEOUT_S = 30.0

    def __init__(self, out_dir: Path, label: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.output = out_dir / f"{label}.pstats"
        self.output.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {"COLLAB_BENCH_CPROFILE_OUT": str(self.output)}

    def start(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR2)

    def finish(self) -> None:
        deadline = time.monotonic() + self.DUMP_TIMEOUT_S
        while not self.output.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


class Tracemalloc:
    """Our server under bench/patched_serve.py with tracemalloc on from start-up: a snapshot just
    before the clients connect, another at the end of the window (every client still connected),
    and the difference, grouped by allocation site, written to DIR/<label>.txt. Tracing costs
    time and memory of its own: for finding where per-connection memory goes, never the table."""

    DUMP_TIMEOUT_S = 60.0

    def __init__(self, out_dir: Path, label: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.output = out_dir / f"{label}.txt"
        self.output.unlink(missing_ok=True)

    def env(self) -> dict[str, str]:
        return {"COLLAB_BENCH_TRACEMALLOC_OUT": str(self.output.resolve())}

    def before_clients(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR1)

    def start(self, pid: int) -> None:
        """The snapshot to compare with was taken before the clients connected."""

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGUSR2)

    def finish(self) -> None:
        deadline = time.monotonic() + self.DUMP_TIMEOUT_S
        while not self.output.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


class Callgrind:
    """Our server under `valgrind --tool=callgrind`, instrumented only over the measured window:
    the instructions it executed there, which other load on the box cannot change (CPU seconds
    on a shared 2-core box move ±15 % between runs). Valgrind runs the server ~50× slower, so use
    a light scenario (e.g. `--scenarios 2x10 --rate 5`) and compare instructions per edit and per
    delivery between two exports of the code, not its latencies."""

    def __init__(self, out_dir: Path, label: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.output = out_dir / f"{label}.callgrind"
        for old in out_dir.glob(f"{label}.callgrind*"):
            old.unlink()
        self.instructions: int | None = None

    def env(self) -> dict[str, str]:
        return {}

    def argv_prefix(self) -> list[str]:
        return [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            "--quiet",
            f"--callgrind-out-file={self.output}",
        ]

    def start(self, pid: int) -> None:
        subprocess.run(
            ["callgrind_control", "--instr=on", str(pid)], check=True, capture_output=True
        )

    def stop(self, pid: int) -> None:
        subprocess.run(
            ["callgrind_control", "--instr=off", str(pid)], check=True, capture_output=True
        )
        subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)

    def finish(self) -> None:
        total = 0
        for dump in self.output.parent.glob(f"{self.output.name}*"):
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
                    break
        self.instructions = total or None


Profiler = PySpy | CProfile | Tracemalloc | Callgrind


def _pump_lines(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line.decode(errors="replace"))
    sink.put(None)


def run_driver(
    server: ServerProcess,
    rooms: list[str],
    clients: int,
    timing: Timing,
    token: str,
    client_cpus: set[int] | None,
    workdir: Path,
    profiler: Profiler | None = None,
) -> dict[str, Any]:
    """Run ws_bench.mjs once; CPU of the server's processes is sampled at its phase lines."""
    pids = {"server": server.pid, **server.companions}
    argv = [node_binary(), str(DRIVER_SCRIPT), "--url", server.ws_base, "--rooms", ",".join(rooms)]
    argv += ["--clients", str(clients), "--rate", str(timing.rate)]
    argv += ["--warmup", str(timing.warmup_s), "--duration", str(timing.duration_s)]
    argv += ["--drain-timeout", str(timing.drain_s)]
    argv += ["--connect-timeout", str(timing.connect_timeout_s)]
    if token:
        argv += ["--token", token]
    stderr_log = workdir / f"driver-{server.name}-{len(rooms)}x{clients}.log"
    budget = timing.connect_timeout_s + timing.warmup_s + timing.duration_s + timing.drain_s
    deadline = time.monotonic() + budget + DRIVER_MARGIN_S
    with stderr_log.open("wb") as stderr_file:
        proc = subprocess.Popen(
            argv,
            cwd=BENCH_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            preexec_fn=child_preexec(client_cpus),
        )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump_lines, args=(proc.stdout, lines), daemon=True).start()
    cpu_start: dict[str, float] = {}
    cpu_end: dict[str, float] = {}
    busy_start = busy_end = 0.0
    rss_drained = 0.0
    switches = 0
    result: dict[str, Any] | None = None
    try:
        while (line := lines.get(timeout=max(0.1, deadline - time.monotonic()))) is not None:
            message = json.loads(line)
            if message.get("phase") == "measure_start":
                cpu_start, busy_start = cpu_of(pids), procstat.system_busy_seconds()
                switches = procstat.voluntary_switches(server.pid)
                if profiler is not None:
                    profiler.start(server.pid)
            elif message.get("phase") == "drained":
                cpu_end, busy_end = cpu_of(pids), procstat.system_busy_seconds()
                switches = procstat.voluntary_switches(server.pid) - switches
                # Every client is still connected here (the driver closes them after its result).
                rss_drained = procstat.rss_mb(server.pid)
                if profiler is not None:
                    profiler.stop(server.pid)
            elif message.get("event") == "result":
                result = message
            elif message.get("event") == "fatal":
                raise BenchError(f"driver failed: {message['message']}")
    except queue.Empty as err:
        raise BenchError(f"driver timed out after {budget + DRIVER_MARGIN_S:.0f}s") from err
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if profiler is not None:
            profiler.finish()
    if result is None or not cpu_start or not cpu_end:
        raise BenchError(f"driver ended without a result: {stderr_log.read_text()[-2000:]}")
    result["cpu_s"] = {role: round(cpu_end[role] - cpu_start[role], 3) for role in pids}
    result["peak_rss_mb"] = {
        role: round(procstat.peak_rss_mb(pid), 1) for role, pid in pids.items()
    }
    result["server_wakeups"] = switches
    result["connected_rss_mb"] = round(rss_drained, 1)
    ours = sum(result["cpu_s"].values()) + result["client"]["cpu_s"]
    result["other_cpu_s"] = round(max(0.0, busy_end - busy_start - ours), 3)
    return result


@dataclass(frozen=True)
class MemoryBaseline:
    """The server's memory once it is ready and the run's rooms exist, just before the clients
    connect; its peak (VmHWM) is then reset, so the peak read after the run is that of the
    connected clients alone, not of start-up (imports, the seeding's password hashes)."""

    rss_mb: float
    startup_peak_mb: float
    peak_reset: bool

    @classmethod
    def take(cls, pid: int) -> MemoryBaseline:
        startup_peak, rss = procstat.peak_rss_mb(pid), procstat.rss_mb(pid)
        return cls(rss, startup_peak, procstat.reset_peak_rss(pid))

    def record(self, result: dict[str, Any], pid: int) -> None:
        """Add `result["memory"]` (read while the server still runs) and keep `peak_rss_mb` the
        peak of the server's whole life, as before the reset."""
        connected_peak = procstat.peak_rss_mb(pid)
        lifetime_peak = max(self.startup_peak_mb, connected_peak)
        result["peak_rss_mb"]["server"] = round(lifetime_peak, 1)
        connections = result["connected"]
        result["memory"] = {
            "baseline_rss_mb": round(self.rss_mb, 1),
            "startup_peak_rss_mb": round(self.startup_peak_mb, 1),
            # Without the reset (an old kernel) this is the lifetime peak: flagged.
            "connected_peak_rss_mb": round(connected_peak, 1),
            "peak_reset": self.peak_reset,
            "connected_rss_mb": result["connected_rss_mb"],
            "connections": connections,
            "rss_per_connection_kb": (
                round((connected_peak - self.rss_mb) * 1024 / connections, 1)
                if connections
                else None
            ),
        }


# --------------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------------


def summarize(server: str, scenario: Scenario, result: dict[str, Any]) -> dict[str, Any]:
    """One table row: the figures the issue asks for, derived from the driver's result."""
    deliveries = result["deliveries"]
    server_cpu = result["cpu_s"]["server"]
    stack_cpu = sum(result["cpu_s"].values())
    latency = result["latency"]
    memory = result["memory"]
    return {
        "scenario": scenario.label,
        "server": server,
        "p50_ms": latency["p50_ms"],
        "p95_ms": latency["p95_ms"],
        "p99_ms": latency["p99_ms"],
        "max_ms": latency["max_ms"],
        "deliveries": deliveries,
        "expected_deliveries": result["expected_deliveries"],
        "server_cpu_s": server_cpu,
        "stack_cpu_s": round(stack_cpu, 3),
        "deliveries_per_cpu_s_server": round(deliveries / server_cpu) if server_cpu else None,
        "deliveries_per_cpu_s_stack": round(deliveries / stack_cpu) if stack_cpu else None,
        "peak_rss_mb": result["peak_rss_mb"]["server"],
        "baseline_rss_mb": memory["baseline_rss_mb"],
        "connected_peak_rss_mb": memory["connected_peak_rss_mb"],
        "connected_rss_mb": memory["connected_rss_mb"],
        "connections": memory["connections"],
        "rss_per_connection_kb": memory["rss_per_connection_kb"],
        "edits_per_frame": result["edits_per_frame"],
        "server_wakeups_per_edit": round(result["server_wakeups"] / max(1, result["edits"]), 2),
        "client_cpu_share": result["client"]["cpu_share"],
        # Cores' worth of CPU other work on the box used while we measured (noise indicator).
        "other_cpu_share": round(result["other_cpu_s"] / result["window_s"], 2),
        "errors": sum(v for k, v in result["errors"].items() if k != "samples"),
        **instruction_figures(result),
    }


def instruction_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Callgrind runs only: the server's instructions in the window per edit and per delivery."""
    instructions = result.get("server_instructions")
    if not instructions:
        return {}
    return {
        "server_instructions_per_edit": round(instructions / max(1, result["edits"])),
        "server_instructions_per_delivery": round(instructions / max(1, result["deliveries"])),
    }


def make_profiler(
    args: argparse.Namespace, label: str, client_cpus: set[int] | None
) -> Profiler | None:
    if args.callgrind:
        return Callgrind(args.callgrind, label)
    if args.cprofile:
        return CProfile(args.cprofile, label)
    if args.tracemalloc:
        return Tracemalloc(args.tracemalloc, label)
    if args.py_spy:
        return PySpy(args.py_spy, label, args.duration, client_cpus)
    return None


@dataclass(frozen=True)
class Setup:
    """What every run of one invocation shares."""

    args: argparse.Namespace
    timing: Timing
    stack: OurStack | None
    workdir: Path
    server_cpus: set[int] | None
    client_cpus: set[int] | None


def run_one(setup: Setup, name: str, scenario: Scenario, label: str) -> dict[str, Any]:
    """One scenario on a fresh process of server `name`."""
    profiler = make_profiler(setup.args, label, setup.client_cpus) if is_ours(name) else None
    env, module = our_launch(name, profiler)
    prefix = profiler.argv_prefix() if isinstance(profiler, Callgrind) else []
    with server_under_test(
        name, setup.stack, setup.workdir, setup.server_cpus, env=env, module=module, prefix=prefix
    ) as server:
        rooms = new_rooms(server, setup.stack, scenario.rooms)
        token = token_for(server, setup.stack)
        print(f"… {label}", file=sys.stderr, flush=True)
        busy_before = wait_for_quiet(setup.args.quiet_wait)
        memory = MemoryBaseline.take(server.pid)
        if isinstance(profiler, Tracemalloc):
            profiler.before_clients(server.pid)
        result = run_driver(
            server,
            rooms,
            scenario.clients,
            setup.timing,
            token,
            setup.client_cpus,
            setup.workdir,
            profiler,
        )
        memory.record(result, server.pid)
    result["busy_before_cores"] = busy_before
    result["profiled"] = profiler is not None
    if isinstance(profiler, Callgrind):
        result["server_instructions"] = profiler.instructions
    return result


def median_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (scenario, server): the median of each figure over the repeats."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["server"]), []).append(row)
    merged = []
    for runs in groups.values():
        row = dict(runs[0])
        for key, value in row.items():
            values = [run[key] for run in runs if run[key] is not None]
            if isinstance(value, (int, float)) and values:
                median = statistics.median(values)
                row[key] = int(median) if median == int(median) else round(median, 3)
        row["repeats"] = len(runs)
        merged.append(row)
    return merged


def run_all(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    scenarios = [Scenario.parse(s) for s in args.scenarios.split(",") if s.strip()]
    servers = servers_to_run(args.servers)
    split = None if args.no_pin else procstat.server_and_client_cpus()
    server_cpus, client_cpus = split if split else (None, None)
    timing = Timing(args.rate, args.warmup, args.duration, args.drain, args.connect_timeout)
    ensure_node_modules()
    stack = OurStack(workdir, server_cpus) if any(map(is_ours, servers)) else None
    setup = Setup(args, timing, stack, workdir, server_cpus, client_cpus)
    rows, raw = [], []
    try:
        if stack:
            stack.start()
        for scenario in scenarios:
            # Servers alternate within each repeat, so slow drifts in the box's load hit all.
            for repeat in range(args.repeat):
                for name in servers:
                    label = f"{scenario.label}-{name}" + (
                        f"-{repeat + 1}" if args.repeat > 1 else ""
                    )
                    result = run_one(setup, name, scenario, label)
                    raw.append({"scenario": scenario.label, "server": name, "result": result})
                    rows.append(summarize(name, scenario, result))
    finally:
        if stack:
            stack.stop()
    return {
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": source_version(),
        "machine": machine_notes(server_cpus, client_cpus),
        "timing": timing.__dict__,
        "rows": median_rows(rows),
        "runs": rows,
        "raw": raw,
    }


def source_version() -> str:
    """The code measured: the git commit (+ "-dirty" with local changes), or, for a tree exported
    with `git archive` (the clean way to measure a commit in a shared working tree), the commit
    written to `.bench-source` next to it."""
    root = BENCH_DIR.parent
    marker = root / ".bench-source"
    if marker.exists():
        return marker.read_text().strip()
    described = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=12"],
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "unknown"


def machine_notes(server_cpus: set[int] | None, client_cpus: set[int] | None) -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node_version = subprocess.run(
        [node_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node_version,
        "pinning": (
            f"servers (our server, nats-server, postgres, redis; or the reference server) on CPU "
            f"{sorted(server_cpus)}, the Node client on CPU {sorted(client_cpus)}"
            if server_cpus and client_cpus
            else "none"
        ),
    }


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

TABLE_COLUMNS = [
    ("scenario", "scenario"),
    ("server", "server"),
    ("p50 ms", "p50_ms"),
    ("p95 ms", "p95_ms"),
    ("p99 ms", "p99_ms"),
    ("deliveries", "deliveries"),
    ("deliveries / CPU-s (server)", "deliveries_per_cpu_s_server"),
    ("deliveries / CPU-s (server + nats-server)", "deliveries_per_cpu_s_stack"),
    ("peak RSS MB", "peak_rss_mb"),
    ("RSS before clients MB", "baseline_rss_mb"),
    ("peak RSS with clients MB", "connected_peak_rss_mb"),
    ("KB / connection", "rss_per_connection_kb"),
    ("other load (cores)", "other_cpu_share"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| " + " | ".join(title for title, _ in TABLE_COLUMNS) + " |",
        "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|",
    ]
    for row in rows:
        cells = []
        for _, key in TABLE_COLUMNS:
            value = row[key]
            if key == "deliveries" and row["deliveries"] != row["expected_deliveries"]:
                value = f"{value} of {row['expected_deliveries']}"
            cells.append("–" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_summary(rows: list[dict[str, Any]], idle: bool = False) -> list[str]:
    """Ours vs reference for each scenario where both ran: the issue's targets (with `idle`, a
    `--rate 0` run, the one on peak RSS per idle connection)."""
    by_key = {(row["scenario"], row["server"]): row for row in rows}
    notes = []
    for (scenario, server), ours in by_key.items():
        reference = by_key.get((scenario, "reference"))
        if not is_ours(server) or reference is None:
            continue
        if (
            idle
            and ours["rss_per_connection_kb"] is not None
            and reference["rss_per_connection_kb"]
        ):
            per_conn, ref_conn = ours["rss_per_connection_kb"], reference["rss_per_connection_kb"]
            met = "met" if per_conn <= ref_conn else "NOT met"
            notes.append(
                f"{scenario}: peak RSS per idle connection {server} {per_conn} KB vs reference "
                f"{ref_conn} KB (target ≤ reference: {met})"
            )
        if not reference["deliveries_per_cpu_s_stack"] or not ours["deliveries_per_cpu_s_stack"]:
            continue
        ratio = ours["deliveries_per_cpu_s_stack"] / reference["deliveries_per_cpu_s_stack"]
        notes.append(
            f"{scenario}: throughput {server} (server + nats-server) / reference = {ratio:.2f} "
            f"(target ≥ 1.00: {'met' if ratio >= 1 else 'NOT met'})"
        )
        if ours["p99_ms"] and reference["p99_ms"]:
            p99 = ours["p99_ms"] / reference["p99_ms"]
            met = "met" if p99 <= TARGET_P99_RATIO else "NOT met"
            notes.append(f"{scenario}: p99 {server} / reference = {p99:.2f} (target ≤ 1.50: {met})")
    return notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        try:
            report = run_all(args, Path(tmp))
        except BenchError as err:
            print(f"bench failed: {err}", file=sys.stderr)
            return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    if args.repeat > 1:
        print(f"medians of {args.repeat} runs per row (each run: bench/results JSON `runs`)")
    print(markdown_table(report["rows"]))
    for note in target_summary(report["rows"], idle=args.rate == 0):
        print(note)
    print(f"\nsource: {report['source']}\nmachine: {report['machine']}\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
