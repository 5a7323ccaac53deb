"""Search latency, search freshness and export time, measured on this machine.

    python -m bench.search_export [--docs 1000] [--blocks 100] [--queries 200] [--export-blocks 1000]

Starts the embedded stack and one node context in-process, then:
* fills `--docs` documents of `--blocks` blocks each (random words from a 2,000-word vocabulary)
  straight into `documents`/`blocks` with COPY (the triggers vector them as the projection would;
  the blocks' GIN index is built once after the load), and runs
  `--queries` searches of 1–2 words (the last a prefix) through `services.search.search` as the
  workspace owner: p50/p99 latency, the policy SQL included;
* freshness: publishes a BlockNote block with a new word to the document log (what a live editor's
  update does), then searches until the word is found with its block id; lag p50/max over 10
  edits with the projection refresh period `COLLAB_PROJECTION_REFRESH_S` (default 2 s);
* export: a `--export-blocks` document exported as Markdown, HTML and PDF.

Writes bench/results/search_export.json. Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from models.migrate import migrate
from server.app import build_context
from server.embedded import EmbeddedStack
from server.settings import Settings
from services.export import Point, export_document
from services.search import SearchRequest, search
from tests.documents_support import Writer
from tests.realtime_support import set_member
from tests.ws_helpers import fast_user

RESULTS = Path(__file__).resolve().parent / "results" / "search_export.json"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def vocabulary(size: int, rng: random.Random) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(4, 9))) for _ in range(size)]


# Blocks copied per COPY statement while filling (a few MB per round trip).
COPY_CHUNK_ROWS = 50_000


async def fill(ctx: Any, workspace_id: str, owner_id: str, args: argparse.Namespace) -> list[str]:
    """Bulk-load `--docs` × `--blocks` rows with COPY (what a large import does): the blocks' GIN
    index is dropped for the load and built once after it, the row triggers still vector every
    row as the projection's writes would."""
    rng = random.Random(7)
    words = vocabulary(2000, rng)
    doc_ids = [uuid.uuid4() for _ in range(args.docs)]
    # A connection of its own: COPY is binary, and jsonb needs a binary codec the pool's
    # connections should not keep.
    conn = await asyncpg.connect(ctx.settings.database_url)
    try:
        await conn.set_type_codec(
            "jsonb",
            schema="pg_catalog",
            encoder=lambda value: b"\x01" + value.encode(),
            decoder=lambda data: data[1:].decode(),
            format="binary",
        )
        await conn.copy_records_to_table(
            "documents",
            records=[
                (
                    doc_id,
                    uuid.UUID(workspace_id),
                    " ".join(rng.choices(words, k=3)),
                    uuid.UUID(owner_id),
                )
                for doc_id in doc_ids
            ],
            columns=["id", "workspace_id", "title", "created_by"],
        )
        await conn.execute("DROP INDEX IF EXISTS blocks_search_tsv_idx")
        chunk: list[tuple[Any, ...]] = []
        for doc_id in doc_ids:
            for i in range(args.blocks):
                text = " ".join(rng.choices(words, k=12))
                chunk.append((doc_id, f"b{i}", i, 0, [f"b{i}"], "paragraph", "{}", text))
                if len(chunk) >= COPY_CHUNK_ROWS:
                    await _copy_blocks(conn, chunk)
                    chunk = []
        await _copy_blocks(conn, chunk)
        await conn.execute("CREATE INDEX blocks_search_tsv_idx ON blocks USING gin (search_tsv)")
    finally:
        await conn.close()
    return words


async def _copy_blocks(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        await conn.copy_records_to_table(
            "blocks",
            records=rows,
            columns=[
                "document_id",
                "block_id",
                "position",
                "depth",
                "path",
                "type",
                "content",
                "text",
            ],
        )


async def search_latency(ctx: Any, owner_id: str, words: list[str], n: int) -> dict[str, Any]:
    rng = random.Random(11)
    times = []
    for _ in range(n):
        picked = rng.sample(words, rng.choice((1, 2)))
        q = " ".join([*picked[:-1], picked[-1][:4]])
        started = time.perf_counter()
        await search(ctx, owner_id, SearchRequest(q=q))
        times.append((time.perf_counter() - started) * 1000)
    return {"queries": n, "p50_ms": percentile(times, 0.5), "p99_ms": percentile(times, 0.99)}


async def freshness(ctx: Any, workspace_id: str, owner_id: str, edits: int) -> dict[str, Any]:
    doc_id = str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, 'live', $2)"
            " RETURNING id",
            workspace_id,
            owner_id,
        )
    )
    writer = Writer(ctx.doc_log, doc_id)
    lags = []
    for i in range(edits):
        word = f"fresh{uuid.uuid4().hex[:10]}"
        started = time.perf_counter()
        await writer.add_block(f"live{i}", f"typed {word}")
        while True:
            page = await search(ctx, owner_id, SearchRequest(q=word, kinds=("block",)))
            if any(r.block_id == f"live{i}" for r in page.results):
                break
            await asyncio.sleep(0.02)
        lags.append(time.perf_counter() - started)
    return {
        "edits": len(lags),
        "refresh_period_s": ctx.settings.projection_refresh_s,
        "lag_p50_s": statistics.median(lags),
        "lag_max_s": max(lags),
    }


async def export_times(ctx: Any, workspace_id: str, owner_id: str, blocks: int) -> dict[str, Any]:
    doc_id = str(
        await ctx.db.fetchval(
            "INSERT INTO documents (workspace_id, title, created_by) VALUES ($1, 'big', $2)"
            " RETURNING id",
            workspace_id,
            owner_id,
        )
    )
    writer = Writer(ctx.doc_log, doc_id)
    kinds = ["paragraph", "heading", "bulletListItem", "checkListItem", "quote"]
    for i in range(blocks):
        props = {"level": 2} if kinds[i % 5] == "heading" else None
        await writer.add_block(f"k{i}", f"block {i} with some words", kinds[i % 5], props=props)
    result: dict[str, Any] = {"blocks": blocks}
    for fmt in ("markdown", "html", "pdf"):
        started = time.perf_counter()
        exported = await export_document(ctx, owner_id, doc_id, fmt, Point())
        result[f"{fmt}_s"] = time.perf_counter() - started
        result[f"{fmt}_bytes"] = len(exported.body)
    return result


async def run(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    ctx = build_context(settings)
    await ctx.start()
    try:
        owner = await fast_user(ctx, "owner")
        workspace_id = str(
            await ctx.db.fetchval(
                "INSERT INTO workspaces (name, slug, created_by) VALUES ('B', $1, $2) RETURNING id",
                f"bench-{uuid.uuid4().hex}",
                owner.id,
            )
        )
        await set_member(ctx, workspace_id, owner.id, "owner")
        started = time.perf_counter()
        words = await fill(ctx, workspace_id, owner.id, args)
        await ctx.db.execute("ANALYZE")
        return {
            "documents": args.docs,
            "blocks": args.docs * args.blocks,
            "fill_s": time.perf_counter() - started,
            "load_before": os.getloadavg(),
            "cpus": os.cpu_count(),
            "search": await search_latency(ctx, owner.id, words, args.queries),
            "freshness": await freshness(ctx, workspace_id, owner.id, args.edits),
            "export": await export_times(ctx, workspace_id, owner.id, args.export_blocks),
            "load_after": os.getloadavg(),
        }
    finally:
        await ctx.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--export-blocks", type=int, default=1000)
    parser.add_argument("--refresh-s", type=float, default=2.0)
    parser.add_argument("--edits", type=int, default=10, help="freshness edits measured")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="collab-bench-search-") as tmp:
        stack = EmbeddedStack(Path(tmp), fast_unsafe=True).start()
        try:
            migrate(stack.postgres.url())
            settings = Settings(
                jwt_secret="x" * 32, log_format="console", projection_refresh_s=args.refresh_s
            ).with_services(stack.postgres.url(), stack.nats.url, stack.redis.url)
            result = asyncio.run(run(settings, args))
        finally:
            stack.stop()
    args.output.parent.mkdir(exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
