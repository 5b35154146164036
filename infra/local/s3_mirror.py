"""Keeps moto's S3 on disk: moto holds objects in memory only, so the local runtime mirrors
every object under ``<root>/<bucket>/<key>`` and puts them back at the next start.

Layout under ``root`` (``.stratus/s3``):

- ``<bucket>/<key>``: the object's bytes, browsable. Key segments are percent-encoded where
  a file system would misread them (``..``, ``.``, empty segments, ``%``, characters
  Windows refuses), so no key can leave its bucket's folder.
- ``.objects/<bucket>/<sha256(key)>``: the bytes of the rare key that cannot take its
  natural path (a key that is also a "folder" of another key, a segment too long for the
  file system, a clash on a case-insensitive file system).
- ``.meta/<bucket>/<sha256(key)>.json``: the key itself, its ETag, content type and user
  metadata, and where its bytes are. Restore reads these; a data file without one is
  ignored. Every bucket has a ``.meta`` folder, so empty buckets come back too.

Bucket names cannot begin with a dot, so the dot folders never meet a bucket. Only the
current version of an object is mirrored.

The mirror reads S3 through boto3 against the moto server rather than moto's in-process
backend: the one private moto surface the runtime depends on stays the Lambda hook, and
the cost (one ListObjectsV2 page per bucket every couple of seconds over loopback, a
GetObject only for objects whose ETag changed) is nothing next to a developer's machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

logger = logging.getLogger(__name__)

META = ".meta"
OVERFLOW = ".objects"
TMP = ".tmp"
# S3's own bucket naming rule: lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Characters kept as they are in a file name besides letters, digits and "_.-~"; the rest
# (including "%", "/", "\\" and what Windows refuses) is percent-encoded.
_KEEP = " !$&'()+,;=@[]"
_MAX_SEGMENT_BYTES = 255
# Headers of an object that a put must give back.
_ATTRIBUTES = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage")


def _segment(segment: str) -> str:
    # quote() never produces a bare "%" or "%2E" (it leaves "." alone), so these stand-ins
    # cannot collide with an encoded ordinary segment.
    if segment == "":
        return "%"
    if segment in (".", ".."):
        return "%2E" * len(segment)
    return quote(segment, safe=_KEEP)


def natural_path(key: str) -> Path | None:
    """The key's path relative to its bucket's folder, or None when a segment would be
    too long for a file system. The result never contains ``..``, ``.`` or an absolute
    part."""
    parts = [_segment(segment) for segment in key.split("/")]
    if any(len(part.encode()) > _MAX_SEGMENT_BYTES for part in parts):
        return None
    return Path(*parts)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


@dataclass
class _Entry:
    etag: str
    # Path of the bytes, relative to the mirror's root.
    data: str


class S3Mirror:
    def __init__(self, root: Path, s3: Any, interval_s: float = 2.0) -> None:
        self._root = root
        self._s3 = s3
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._known: dict[str, dict[str, _Entry]] = {}
        # Case-folded data paths in use -> (bucket, key), to spot clashes on
        # case-insensitive file systems (macOS, Windows) before they overwrite a file.
        self._claims: dict[str, tuple[str, str]] = {}
        self._restored = False
        self._root.mkdir(parents=True, exist_ok=True)
        self._load()

    @property
    def root(self) -> Path:
        return self._root

    # --- index ------------------------------------------------------------------------

    def _meta_dir(self, bucket: str) -> Path:
        return self._root / META / bucket

    def _sidecar(self, bucket: str, key: str) -> Path:
        return self._meta_dir(bucket) / f"{_digest(key)}.json"

    def _read_sidecars(self) -> list[tuple[str, dict[str, Any]]]:
        """Every valid sidecar as (bucket, record); tampered or broken ones are skipped."""
        found: list[tuple[str, dict[str, Any]]] = []
        meta = self._root / META
        if not meta.is_dir():
            return found
        for bucket_dir in sorted(meta.iterdir()):
            if not bucket_dir.is_dir() or not _BUCKET.match(bucket_dir.name):
                continue
            self._known.setdefault(bucket_dir.name, {})
            for sidecar in sorted(bucket_dir.glob("*.json")):
                try:
                    record = json.loads(sidecar.read_text(encoding="utf-8"))
                    key, data = record["key"], record["data"]
                    valid = (isinstance(key, str) and isinstance(data, str)
                             and sidecar.name == f"{_digest(key)}.json"
                             and (_inside(self._root / data, self._root / bucket_dir.name)
                                  or _inside(self._root / data, self._root / OVERFLOW / bucket_dir.name)))
                except (OSError, ValueError, KeyError, TypeError):
                    valid = False
                if not valid:
                    logger.warning("ignoring unreadable S3 mirror record %s", sidecar)
                    continue
                found.append((bucket_dir.name, record))
        return found

    def _load(self) -> None:
        for bucket, record in self._read_sidecars():
            self._known[bucket][record["key"]] = _Entry(str(record.get("etag", "")), record["data"])
            self._claims[record["data"].casefold()] = (bucket, record["key"])

    # --- restore ----------------------------------------------------------------------

    def restore(self) -> int:
        """Put every mirrored object back into its bucket (creating missing buckets);
        returns how many objects were restored."""
        with self._lock:
            existing = {b["Name"] for b in self._s3.list_buckets().get("Buckets", [])}
            restored = 0
            for bucket in sorted(self._known):
                if bucket not in existing:
                    self._s3.create_bucket(Bucket=bucket)
            for bucket, record in self._read_sidecars():
                data = self._root / record["data"]
                if not data.is_file():
                    logger.warning("S3 mirror lost the bytes of s3://%s/%s; not restored",
                                   bucket, record["key"])
                    continue
                extra = {name: record[name] for name in _ATTRIBUTES if record.get(name)}
                with data.open("rb") as body:
                    response = self._s3.put_object(Bucket=bucket, Key=record["key"], Body=body,
                                                   Metadata=record.get("Metadata") or {}, **extra)
                # A multipart object comes back with a different ETag; remember the new one
                # so the next sync does not copy the same bytes again.
                self._known[bucket][record["key"]] = _Entry(response["ETag"], record["data"])
                restored += 1
            self._restored = True
            return restored

    # --- sync -------------------------------------------------------------------------

    def sync(self) -> tuple[int, int]:
        """Write objects whose ETag changed and delete files of deleted objects; returns
        (written, deleted)."""
        with self._lock:
            if not self._restored:
                # Before restore() the buckets are empty, and a sync would take that as
                # "everything was deleted" and wipe the mirror.
                raise RuntimeError("S3Mirror.restore() must run before sync()")
            written = deleted = 0
            buckets = [b["Name"] for b in self._s3.list_buckets().get("Buckets", [])]
            for bucket in buckets:
                if not _BUCKET.match(bucket):
                    logger.warning("not mirroring bucket with unexpected name %r", bucket)
                    continue
                known = self._known.setdefault(bucket, {})
                self._meta_dir(bucket).mkdir(parents=True, exist_ok=True)
                listed: dict[str, str] = {}
                for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    for obj in page.get("Contents", []):
                        listed[obj["Key"]] = obj["ETag"]
                for key, etag in listed.items():
                    entry = known.get(key)
                    if entry is None or entry.etag != etag:
                        written += self._write(bucket, key)
                for key in [k for k in known if k not in listed]:
                    self._delete(bucket, key)
                    deleted += 1
            for bucket in [b for b in self._known if b not in buckets]:
                deleted += len(self._known[bucket])
                for key in list(self._known[bucket]):
                    self._delete(bucket, key)
                del self._known[bucket]
                shutil.rmtree(self._meta_dir(bucket), ignore_errors=True)
                shutil.rmtree(self._root / bucket, ignore_errors=True)
                shutil.rmtree(self._root / OVERFLOW / bucket, ignore_errors=True)
            return written, deleted

    def _claimable(self, bucket: str, key: str, rel: str) -> bool:
        owner = self._claims.get(rel.casefold())
        return owner is None or owner == (bucket, key)

    def _write(self, bucket: str, key: str) -> int:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey:
            return 0  # deleted since it was listed; the next sync drops it
        tmp_dir = self._root / TMP
        tmp_dir.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=tmp_dir, delete=False) as tmp:
            for chunk in response["Body"].iter_chunks(1 << 20):
                tmp.write(chunk)
        tmp_path = Path(tmp.name)
        try:
            rel = self._place(bucket, key, tmp_path)
        finally:
            tmp_path.unlink(missing_ok=True)
        record: dict[str, Any] = {"bucket": bucket, "key": key, "etag": response["ETag"], "data": rel,
                                  "Metadata": response.get("Metadata") or {}}
        record.update({name: response[name] for name in _ATTRIBUTES if response.get(name)})
        sidecar = self._sidecar(bucket, key)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=tmp_dir, delete=False, encoding="utf-8") as tmp_meta:
            json.dump(record, tmp_meta)
        # The sidecar is replaced after the bytes: a record always points at whole bytes.
        os.replace(tmp_meta.name, sidecar)
        self._known[bucket][key] = _Entry(response["ETag"], rel)
        self._claims[rel.casefold()] = (bucket, key)
        return 1

    def _place(self, bucket: str, key: str, tmp_path: Path) -> str:
        """Move the downloaded bytes to the key's natural path, or its overflow path when
        that cannot hold them; returns the path relative to the root."""
        entry = self._known[bucket].get(key)
        candidates: list[Path] = []
        if entry is not None:
            candidates.append(self._root / entry.data)
        natural = natural_path(key)
        if natural is not None:
            candidates.append(self._root / bucket / natural)
        for target in candidates:
            rel = target.relative_to(self._root).as_posix()
            if not _inside(target, self._root / bucket) or not self._claimable(bucket, key, rel):
                continue
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_path, target)
            except OSError:
                # A file where a folder is needed or the reverse ("a" and "a/b" both keys).
                continue
            return rel
        overflow = self._root / OVERFLOW / bucket / _digest(key)
        overflow.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp_path, overflow)
        return overflow.relative_to(self._root).as_posix()

    def _delete(self, bucket: str, key: str) -> None:
        entry = self._known[bucket].pop(key)
        self._claims.pop(entry.data.casefold(), None)
        self._sidecar(bucket, key).unlink(missing_ok=True)
        data = self._root / entry.data
        data.unlink(missing_ok=True)
        # Drop folders the key left empty, up to (not including) the bucket's folder.
        for parent in data.parents:
            if parent in (self._root / bucket, self._root / OVERFLOW / bucket, self._root):
                break
            with contextlib.suppress(OSError):
                parent.rmdir()  # fails, as wanted, while the folder still holds something

    # --- background -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.sync()
            except Exception:
                # The next round tries again; a mirror that stops silently would lose data.
                logger.exception("S3 mirror sync failed")

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="s3-mirror", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and sync once more (the server must still run)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._restored:
            self.sync()
