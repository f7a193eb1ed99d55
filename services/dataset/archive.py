"""Reading an archive (zip, tar, tar.gz) safely: entry names checked, junk skipped, sizes and compression
ratios bounded (ImportLimits), large entries streamed to the work folder.
"""

from __future__ import annotations

import re
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from kernel.errors import InvalidArgument
from services.dataset.import_types import (
    ARCHIVE_TAR,
    ARCHIVE_TAR_GZ,
    ARCHIVE_ZIP,
    RATIO_APPLIES_FROM,
    ImportLimits,
    _bad,
)

JUNK_NAMES = {"__macosx", "thumbs.db", "desktop.ini", "ehthumbs.db"}


_CHUNK = 1024**2


@dataclass
class _Entry:
    name: str  # normalised relative path
    size: int
    index: int
    ref: object


class _Archive:
    """Read-only view of a zip or tar archive with names checked and sizes bounded.

    Every bound is checked against the sizes the archive declares before anything is expanded (an
    entry over max_entry_bytes, a total over max_uncompressed_bytes, or a compression ratio over
    max_compression_ratio is refused at once, naming the entry), and again while reading, in chunks."""

    def __init__(self, path: Path, kind: str, limits: ImportLimits) -> None:
        self.kind = kind
        self.limits = limits
        self.files: list[_Entry] = []
        self.skipped_junk = 0
        self.skipped_links: list[str] = []
        self.archive_bytes = path.stat().st_size
        self._read_total = 0
        self._zip: zipfile.ZipFile | None = None
        self._tar: tarfile.TarFile | None = None
        try:
            if kind == ARCHIVE_ZIP:
                self._open_zip(path)
            else:
                self._open_tar(path, "r:gz" if kind == ARCHIVE_TAR_GZ else "r:")
        except InvalidArgument:
            self.close()
            raise
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            OSError,
            ValueError,
            NotImplementedError,
            zlib.error,
        ) as exc:
            self.close()
            raise _bad(f"not a readable {kind} archive: {exc}") from None

    def _open_zip(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        infos = self._zip.infolist()
        self._check_count(len(infos))
        total = 0
        for index, info in enumerate(infos):
            name = _safe_name(info.filename)
            if info.is_dir() or not name:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink
                self.skipped_links.append(name)
                continue
            self._check_entry(name, info.file_size, info.compress_size)
            total += info.file_size
            self._check_total(total, name)
            self._add(_Entry(name, info.file_size, index, info))

    def _open_tar(self, path: Path, mode: str) -> None:
        self._tar = tarfile.open(path, mode)  # noqa: SIM115 - closed in close()
        total = 0
        count = 0
        # Each member is judged on its header, before tarfile reads past its data.
        for member in self._tar:
            count += 1
            self._check_count(count)
            name = _safe_name(member.name)
            if member.isdir() or not name:
                continue
            if not member.isfile():  # links, devices, fifos are never followed
                self.skipped_links.append(name)
                continue
            self._check_entry(name, member.size, None)
            total += member.size
            self._check_total(total, name)
            self._add(_Entry(name, member.size, count, member))

    def _add(self, entry: _Entry) -> None:
        if _is_junk(entry.name):
            self.skipped_junk += 1
        else:
            self.files.append(entry)

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_entries:
            raise _bad(f"archive has more than {self.limits.max_entries} entries (dataset_max_entries)")

    def _check_entry(self, name: str, size: int, compressed: int | None) -> None:
        limits = self.limits
        if size > limits.max_entry_bytes:
            raise _bad(
                f"entry {name!r} expands to {size} bytes, over the limit of {limits.max_entry_bytes} bytes per "
                "entry (dataset_max_entry_bytes); nothing was imported"
            )
        if compressed is not None:
            self._check_ratio(f"entry {name!r}", size, compressed)

    def _check_ratio(self, what: str, size: int, compressed: int) -> None:
        ratio = self.limits.max_compression_ratio
        if size >= RATIO_APPLIES_FROM and size > ratio * max(compressed, 1):
            raise _bad(
                f"{what} expands {size / max(compressed, 1):.0f}:1 ({compressed} bytes to {size}), over the "
                f"limit of {ratio:g}:1 (dataset_max_compression_ratio); nothing was imported"
            )

    def _check_total(self, total: int, name: str = "") -> None:
        if total > self.limits.max_uncompressed_bytes:
            at = f" (at entry {name!r})" if name else ""
            raise _bad(
                f"archive expands to more than {self.limits.max_uncompressed_bytes} bytes{at} "
                "(dataset_max_uncompressed_bytes); nothing was imported"
            )
        # the archive as a whole: a tar.gz does not say how well each member compressed
        self._check_ratio(f"the archive (up to entry {name!r})" if name else "the archive", total, self.archive_bytes)

    def _stream(self, entry: _Entry):
        """The entry's bytes in chunks, never more than its declared size (checked as it goes)."""
        try:
            if self._zip is not None:
                fh = self._zip.open(entry.ref)  # type: ignore[arg-type]
            else:
                assert self._tar is not None
                fh = self._tar.extractfile(entry.ref)  # type: ignore[arg-type]
                if fh is None:
                    raise _bad(f"{entry.name}: cannot read the entry")
            with fh:
                read = 0
                while chunk := fh.read(min(_CHUNK, entry.size + 1 - read)):
                    read += len(chunk)
                    if read > entry.size:
                        raise _bad(f"{entry.name}: entry is larger than its declared size")
                    self._read_total += len(chunk)
                    self._check_total(self._read_total, entry.name)
                    yield chunk
        except InvalidArgument:
            raise
        except (
            zipfile.BadZipFile,
            tarfile.TarError,
            EOFError,
            OSError,
            RuntimeError,
            ValueError,
            zlib.error,
        ) as exc:  # NotImplementedError (an unsupported zip method) is a RuntimeError
            raise _bad(f"{entry.name}: cannot read the entry from the archive: {exc}") from None

    def read(self, entry: _Entry) -> bytes:
        return b"".join(self._stream(entry))

    def extract(self, entry: _Entry, target: Path) -> Path:
        """Write the entry to `target` in chunks (large entries never sit in memory whole)."""
        with open(target, "wb") as out:
            for chunk in self._stream(entry):
                out.write(chunk)
        return target

    def close(self) -> None:
        for handle in (self._zip, self._tar):
            if handle is not None:
                handle.close()


def _safe_name(raw: str) -> str:
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise _bad(f"entry {raw!r} has an absolute path; archives must hold relative paths only")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _bad(f"entry {raw!r} points outside the archive ('..' in its path)")
    return "/".join(parts)


def _is_junk(name: str) -> bool:
    parts = name.split("/")
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


def detect_archive_type(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return ARCHIVE_ZIP
    if head[:2] == b"\x1f\x8b":
        return ARCHIVE_TAR_GZ
    if len(head) >= 262 and head[257:262] == b"ustar":
        return ARCHIVE_TAR
    if tarfile.is_tarfile(path):
        return ARCHIVE_TAR
    if not head:
        raise _bad("the upload is empty")
    raise _bad("not a zip, tar or tar.gz archive (unrecognised leading bytes)")


def _read_small(archive: _Archive, entry: _Entry, limit: int = 512 * 1024 * 1024) -> bytes:
    if entry.size > limit:
        raise _bad(f"{entry.name}: annotation file is over {limit} bytes")
    return archive.read(entry)
