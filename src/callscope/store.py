"""Media storage: content-addressed blobs behind a small interface, in a local or shared
folder or an S3-compatible object store."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from callscope import errors
from callscope.config import ConfigError

CHUNK = 1024 * 1024


class UploadTooLarge(errors.TooLarge):
    """The stream went past the size cap; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"audio is larger than the upload limit of {limit // (1024 * 1024)} MiB")
        self.limit = limit


@dataclass(frozen=True)
class SpooledUpload:
    """An upload written to a temporary file, with its digest and size."""

    path: Path
    sha256: str
    size: int

    def discard(self) -> None:
        """Remove the temporary file if it is still there."""
        self.path.unlink(missing_ok=True)


class Spool:
    """Writes a stream to a temporary file while hashing it, enforcing a size cap."""

    def __init__(self, tmp_dir: Path, limit: int, suffix: str = "") -> None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=tmp_prefix("upload"), suffix=suffix, dir=tmp_dir)
        self._file = os.fdopen(fd, "wb")
        self.path = Path(name)
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    def write(self, chunk: bytes) -> None:
        """Append a chunk; past the cap the file is removed and UploadTooLarge raised."""
        self.size += len(chunk)
        if self.size > self.limit:
            self.abort()
            raise UploadTooLarge(self.limit)
        self._hash.update(chunk)
        self._file.write(chunk)

    def finish(self) -> SpooledUpload:
        """Close the file and return what was written."""
        try:
            self._file.close()
        except BaseException:
            self.abort()
            raise
        return SpooledUpload(self.path, self._hash.hexdigest(), self.size)

    def abort(self) -> None:
        """Close and remove the file (also when closing fails: a full disk)."""
        try:
            self._file.close()
        except OSError:
            pass  # (the buffered rest could not be written; the file goes anyway)
        self.path.unlink(missing_ok=True)


STALE_SPOOL_S = 24 * 3600  # no upload or rendition in progress is older
HOST = socket.gethostname().replace("~", "-")[:60]


def tmp_prefix(kind: str) -> str:
    """The start of the name of a temporary file (or folder) of KIND: it names this host and
    process, so that what a process that died left behind is known at once."""
    return f"{kind}~{HOST}~{os.getpid()}~"


def _owner_gone(name: str) -> bool:
    """Whether NAME was made by a process of this host that no longer runs."""
    parts = name.split("~")
    if len(parts) < 4 or parts[1] != HOST or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # (it runs, as another user)
    return False


def clean_spool(tmp_dir: Path) -> int:
    """Remove what processes that died mid-upload, mid-rendition or mid-decoding left in
    TMP_DIR: at once when it names a process of this host that no longer runs, else once it is
    older than STALE_SPOOL_S (another host's, or unnamed), so that work in progress stays; how
    many entries went."""
    if not tmp_dir.is_dir():
        return 0
    cutoff = time.time() - STALE_SPOOL_S
    removed = 0
    for path in tmp_dir.iterdir():
        try:
            if not (_owner_gone(path.name) or path.lstat().st_mtime < cutoff):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        except FileNotFoundError:
            continue  # (its process finished with it meanwhile)
    return removed


def safe_suffix(filename: str | None) -> str:
    """The file name's extension if it is a plain short one (kept as a format hint), else ''."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def spool_stream(
    stream: BinaryIO, tmp_dir: Path, limit: int, filename: str | None = None
) -> SpooledUpload:
    """Copy a readable stream to a temporary file, never holding more than a chunk in memory."""
    spool = Spool(tmp_dir, limit, safe_suffix(filename))
    try:
        while chunk := stream.read(CHUNK):
            spool.write(chunk)
    except UploadTooLarge:
        raise
    except BaseException:
        spool.abort()
        raise
    return spool.finish()


class MediaStore(Protocol):
    """Where recordings and their derived files live, addressed by key."""

    def put_file(self, key: str, source: Path, *, move: bool = False) -> None:
        """Store the file at SOURCE under KEY (atomically: readers never see half a file)."""

    def exists(self, key: str) -> bool:
        """Whether KEY is stored."""

    def local_path(self, key: str) -> Path:
        """A local filesystem path to read KEY from."""

    def delete(self, key: str) -> None:
        """Remove KEY if present."""


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def blob_key(sha256: str) -> str:
    """The key of an original recording with this digest."""
    return f"originals/{sha256[:2]}/{sha256}"


class LocalMediaStore:
    """Media in a folder on a local or shared filesystem."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid media key {key!r}")
        return self.root.joinpath(*parts)

    def put_file(self, key: str, source: Path, *, move: bool = False) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move and source.stat().st_dev == target.parent.stat().st_dev:
            source.chmod(0o600)  # (made elsewhere, perhaps with a looser mode)
            os.replace(source, target)
            return
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if move:
            source.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3MediaStore:
    """Media in an S3-compatible object store (AWS S3, MinIO, Ceph …), for several machines.

    Objects are written whole (a reader never sees half of one). Reading needs a local file
    (decoding, HTTP Range responses), so `local_path` downloads an object once into a cache
    folder and reuses it; the cache can be emptied at any time.
    """

    def __init__(self, bucket: str, prefix: str, cache_dir: Path, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.cache = LocalMediaStore(cache_dir)
        self.client = client

    def _object(self, key: str) -> str:
        self.cache._path(key)  # the same key rules as on disk
        return self.prefix + key

    def put_file(self, key: str, source: Path, *, move: bool = False) -> None:
        self.client.upload_file(str(source), self.bucket, self._object(key))
        self.cache.put_file(key, source, move=move)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def local_path(self, key: str) -> Path:
        path = self.cache.local_path(key)
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=path.parent)
            os.close(fd)
            try:
                self.client.download_file(self.bucket, self._object(key), tmp)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return path

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        self.cache.delete(key)


def local_root(media_url: str, default_dir: Path) -> Path | None:
    """The folder of a local media store's URL (None for an object store)."""
    if not media_url:
        return default_dir
    if media_url.startswith("file://") or "://" not in media_url:
        return Path(media_url.removeprefix("file://"))
    return None


def open_store(media_url: str, default_dir: Path, cache_dir: Path) -> MediaStore:
    """The media store for a CALLSCOPE_MEDIA_URL: empty, a path or file:// → a local (or
    shared) folder; s3://BUCKET/PREFIX[?endpoint=URL&region=NAME] → an S3-compatible store
    (credentials from the usual AWS variables or files)."""
    if (root := local_root(media_url, default_dir)) is not None:
        return LocalMediaStore(root)
    url = urlsplit(media_url)
    if url.scheme == "s3" and url.netloc:
        import boto3

        options = parse_qs(url.query)
        client = boto3.client(
            "s3",
            endpoint_url=options.get("endpoint", [None])[0],
            region_name=options.get("region", [None])[0],
        )
        return S3MediaStore(url.netloc, url.path, cache_dir, client)
    raise ConfigError(
        f"CALLSCOPE_MEDIA_URL: unsupported media store URL {media_url!r}"
        " (use a folder path, file://… or s3://bucket/prefix)"
    )
