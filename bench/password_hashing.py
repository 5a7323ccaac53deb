"""Does password hashing starve other requests? (issue 17 item 2, RELIABILITY S24)

    python bench/password_hashing.py [--guessers 8] [--duration 10] [--workers 1,6]

For each `--workers` value a fresh `collab serve` process (one process, the embedded stack) runs
with `COLLAB_PASSWORD_HASH_WORKERS` set to it and the attempt limits raised out of the way (this
measures what is left when many accounts or addresses guess at once, which per-account and per-IP
limits do not stop). Then, for `--duration` seconds each:

1. **alone**: one prober sends `GET /api/v1/auth/me/` back to back (an authenticated request: token
   check in Redis, one Postgres query) and records each latency;
2. **under guessing**: the same prober while `--guessers` threads send `PATCH /api/v1/auth/me/` with
   a wrong `current_password` back to back (each costs one argon2 verification).

`6` is what the code did before the pool was bounded: `asyncio.to_thread` on the default executor,
`min(32, cpus + 4)` threads on this 2-CPU machine. Prints a markdown table (prober p50/p95/p99 and
guesses per second) and writes `bench/results/password_hashing.json`. Figures are from whatever
else the machine runs at the time: compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/password_hashing.py`: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import BENCH_DIR, BENCH_PASSWORD, BenchError, OurStack, http_json

DEFAULT_RESULTS = BENCH_DIR / "results" / "password_hashing.json"
#: Limits high enough that no guess in the run is refused with 429 (the pool is what is measured).
NO_LIMIT = str(10**9)
REQUEST_TIMEOUT_S = 30.0


def _session(base: str) -> str:
    """A fresh user's access token."""
    email = f"pw-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": BENCH_PASSWORD, "display_name": "Pw"}
    status, _ = http_json("POST", f"{base}/api/v1/auth/register/", body)
    if status != 201:
        raise BenchError(f"register failed: {status}")
    login = {"email": email, "password": BENCH_PASSWORD}
    status, pair = http_json("POST", f"{base}/api/v1/auth/login/", login)
    if status != 200:
        raise BenchError(f"login failed: {status} {pair}")
    return str(pair["access_token"])


def _timed(request: urllib.request.Request) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return status, (time.perf_counter() - started) * 1000


def _probe(base: str, token: str, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        request = urllib.request.Request(f"{base}/api/v1/auth/me/")
        request.add_header("Authorization", f"Bearer {token}")
        status, ms = _timed(request)
        if status != 200:
            raise BenchError(f"probe got {status}")
        out.append(ms)


def _guess(base: str, token: str, stop: threading.Event, counts: dict[int, int]) -> None:
    body = json.dumps({"current_password": "wrong guess!", "new_password": "x" * 16}).encode()
    while not stop.is_set():
        request = urllib.request.Request(f"{base}/api/v1/auth/me/", data=body, method="PATCH")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        status, _ = _timed(request)
        counts[status] = counts.get(status, 0) + 1


def _phase(base: str, prober: str, guessers: list[str], duration_s: float) -> dict[str, Any]:
    stop = threading.Event()
    latencies: list[float] = []
    counts: dict[int, int] = {}
    threads = [threading.Thread(target=_guess, args=(base, t, stop, counts)) for t in guessers]
    threads.append(threading.Thread(target=_probe, args=(base, prober, stop, latencies)))
    for thread in threads:
        thread.start()
    time.sleep(duration_s)
    stop.set()
    for thread in threads:
        thread.join(REQUEST_TIMEOUT_S)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "guessers": len(guessers),
        "probe_requests": len(latencies),
        "probe_p50_ms": round(statistics.median(latencies), 1),
        "probe_p95_ms": round(cuts[94], 1),
        "probe_p99_ms": round(cuts[98], 1),
        "guess_statuses": {str(k): v for k, v in sorted(counts.items())},
        "guesses_per_s": round(sum(counts.values()) / duration_s, 1),
    }


def run_variant(stack: OurStack, workers: int, guessers: int, duration_s: float) -> list[dict]:
    env = {
        "COLLAB_PASSWORD_HASH_WORKERS": str(workers),
        "COLLAB_PASSWORD_HASH_QUEUE": "1000",
        "COLLAB_LOGIN_RATE_PER_IP": NO_LIMIT,
        "COLLAB_LOGIN_RATE_PER_EMAIL": NO_LIMIT,
        "COLLAB_REGISTER_RATE_PER_IP": NO_LIMIT,
    }
    server = stack.start_server(env, label=f"workers={workers}")
    try:
        base = server.ws_base.replace("ws://", "http://").removesuffix("/ws/documents")
        prober = _session(base)
        tokens = [_session(base) for _ in range(guessers)]
        rows = []
        for phase_guessers in ([], tokens):
            row = _phase(base, prober, phase_guessers, duration_s)
            rows.append({"workers": workers, **row})
            print(_line(rows[-1]), flush=True)
        return rows
    finally:
        server.stop()


def _line(row: dict[str, Any]) -> str:
    return (
        f"| {row['workers']} | {row['guessers']} | {row['probe_p50_ms']} | {row['probe_p95_ms']}"
        f" | {row['probe_p99_ms']} | {row['probe_requests']} | {row['guesses_per_s']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guessers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", default="1,6", help="comma-separated pool sizes to compare")
    parser.add_argument("--output", type=Path, default=DEFAULT_RESULTS)
    args = parser.parse_args(argv)
    print("| hash workers | guessers | probe p50 ms | p95 ms | p99 ms | probes | guesses/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |", flush=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="collab-bench-pw-") as tmp:
        stack = OurStack(Path(tmp), cpus=None)
        stack.start()
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                rows += run_variant(stack, workers, args.guessers, args.duration)
        finally:
            stack.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"duration_s": args.duration, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
