"""Archive files of retired partitions: the gzip CSV, its manifest, and their crash-safe placement.

No database here (see storage/postgres/archive.py). Layout, per table directory:
`<partition>.csv.gz` + `<partition>.manifest.json`; the manifest is written last, so an archive
without one is incomplete. A second, different export of the same month takes the next free slot
(`<partition>.2.csv.gz`, …): an existing archive is never overwritten with different content.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from domain.partition_calendar import Month

ARCHIVE_FORMAT = "autoins.partition-archive/1"
GZIP_LEVEL = 6
_READ_CHUNK = 1 << 20


class ArchiveError(Exception):
    """Retention or restore cannot proceed safely; the message names the partition or file."""


@dataclass(frozen=True, slots=True)
class Manifest:
    table: str
    partition: str
    month: Month
    file: str  # data file name, relative to the manifest's directory
    columns: tuple[tuple[str, str], ...]  # (name, SQL type)
    row_count: int
    sha256: str
    size_bytes: int
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": ARCHIVE_FORMAT,
            "table": self.table,
            "partition": self.partition,
            "month": str(self.month),
            "range_start": self.month.start.isoformat(),
            "range_end": self.month.end.isoformat(),
            "file": self.file,
            "content": "CSV with header row, UTF-8, gzip; timestamptz in UTC ISO; NULL is an unquoted empty field",
            "columns": [{"name": name, "type": type_} for name, type_ in self.columns],
            "row_count": self.row_count,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ArchivedPartition:
    table: str
    partition: str
    month: Month
    rows: int
    archive_file: Path
    manifest_file: Path
    sha256: str
    reused: bool  # an identical archive already existed (a rerun after an interruption)


class GzipWriter:
    """File-like sink for asyncpg's COPY (it calls `write` from a worker thread, one at a time)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._raw = open(path, "wb")  # noqa: SIM115 - closed by finish/discard
        self._gzip = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=GZIP_LEVEL, mtime=0)

    def write(self, data: bytes) -> int:
        return self._gzip.write(data)

    def finish(self) -> None:
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()

    def discard(self) -> None:
        if not self._raw.closed:
            self._gzip.close()
            self._raw.close()
        self.path.unlink(missing_ok=True)


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self.digest.update(data)
        self.size += len(data)
        buffer[: len(data)] = data
        return len(data)


def scan_archive(path: Path) -> tuple[int, list[str], str, int]:
    """Decompress and parse the whole file: (data rows, header, sha256 of the file, file size)."""
    with open(path, "rb") as raw:
        hashing = _HashingReader(raw)
        buffered = io.BufferedReader(hashing, _READ_CHUNK)
        with gzip.GzipFile(fileobj=buffered, mode="rb") as gz:
            reader = csv.reader(io.TextIOWrapper(gz, encoding="utf-8", newline=""))
            header = next(reader, [])
            rows = sum(1 for _ in reader)
        while buffered.read(_READ_CHUNK):  # hash any trailing bytes gzip did not need
            pass
    return rows, header, hashing.digest.hexdigest(), hashing.size


def place_archive(
    tmp: Path,
    directory: Path,
    table: str,
    name: str,
    month: Month,
    columns: list[tuple[str, str]],
    rows: int,
    sha256: str,
    size: int,
) -> ArchivedPartition:
    """Move a verified temporary export into the first free slot, or reuse an identical archive.

    Data file first, then the manifest (its presence marks the archive complete), then fsync the
    directory so both renames survive a crash.
    """
    for n in itertools.count(1):
        stem = name if n == 1 else f"{name}.{n}"
        data_file, manifest_file = directory / f"{stem}.csv.gz", directory / f"{stem}.manifest.json"
        if not manifest_file.exists():
            break  # free slot (a data file without a manifest is an incomplete earlier attempt)
        existing = read_manifest(manifest_file)
        if existing.sha256 == sha256 and data_file.is_file() and data_file.stat().st_size == size:
            tmp.unlink()
            return ArchivedPartition(table, name, month, rows, data_file, manifest_file, sha256, reused=True)
    os.replace(tmp, data_file)
    manifest = Manifest(
        table=table,
        partition=name,
        month=month,
        file=data_file.name,
        columns=tuple(columns),
        row_count=rows,
        sha256=sha256,
        size_bytes=size,
        created_at=datetime.now(UTC).isoformat(),
    )
    write_atomically(manifest_file, json.dumps(manifest.to_json(), indent=2).encode() + b"\n")
    fsync_dir(directory)
    return ArchivedPartition(table, name, month, rows, data_file, manifest_file, sha256, reused=False)


def write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive_paths(path: Path) -> tuple[Path, Path]:
    """(data file, manifest) for either of the two."""
    if not path.is_file():
        raise ArchiveError(f"{path}: no such archive file")
    name = path.name
    if name.endswith(".manifest.json"):
        manifest = path
        data = Path(read_manifest(manifest).file)
        return path.with_name(data.name), manifest
    if name.endswith(".csv.gz"):
        return path, path.with_name(name.removesuffix(".csv.gz") + ".manifest.json")
    raise ArchiveError(f"{path}: expected a <partition>.csv.gz archive or its .manifest.json")


def read_manifest(path: Path) -> Manifest:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArchiveError(f"{path}: manifest not found (an archive without one is incomplete)") from None
    except (OSError, ValueError) as error:
        raise ArchiveError(f"{path}: unreadable manifest: {error}") from None
    if not isinstance(raw, dict) or raw.get("format") != ARCHIVE_FORMAT:
        raise ArchiveError(f"{path}: not an {ARCHIVE_FORMAT} manifest")
    try:
        return Manifest(
            table=str(raw["table"]),
            partition=str(raw["partition"]),
            month=Month.parse(str(raw["month"])),
            file=str(raw["file"]),
            columns=tuple((str(c["name"]), str(c["type"])) for c in raw["columns"]),
            row_count=int(raw["row_count"]),
            sha256=str(raw["sha256"]),
            size_bytes=int(raw["size_bytes"]),
            created_at=str(raw["created_at"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ArchiveError(f"{path}: malformed manifest ({error!r})") from None


def sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as source:
        while chunk := source.read(_READ_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
