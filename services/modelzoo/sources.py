"""Where pre-trained weights come from: the configured chain of sources, tried in order.

A source names the locations of a catalog model's weight file without touching the network
(`locations`), says cheaply whether it provides them at all (`provides`, which makes a model
IMPORTABLE), and fetches one location into a local folder (`fetch`): streamed, resumed after a cut
connection (HTTP Range, S3 offset), and verified as far as the publisher says (the size; the
sha256 for the hub's LFS files, whose ETag is their sha256). The hash prefix in torchvision's and
timm's file names is checked by the zoo when it stores the file.

Kinds (settings.parse_weight_sources):
- offline: files on this machine (a folder, installed packages), used where they lie;
- publishers: each model's published URL (download.pytorch.org, GitHub releases), and the Hugging
  Face hub for timm's `hf_hub_id` (through huggingface_hub; tried first, as timm does);
- a mirror (http(s)://BASE) or an S3 prefix (s3://BUCKET/PREFIX) with the publishers' layout: the
  path of each published URL under the base, the hub's files at <repo>/resolve/<rev>/<file>;
- flat:URL: files by their names right under URL (the old mirror base URL; file:// is a folder).

Plain HTTP goes through urllib3 (the minio SDK's client), the hub through huggingface_hub. Nothing
here imports torch or grpc.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import urllib3
from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, ResponseError

from services.modelzoo.catalog import CatalogModel

log = logging.getLogger(__name__)

# Files of a timm repository on the hub, in the order timm loads them.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")
HUB_REVISION = "main"
CHUNK = 1024 * 1024
MAX_REDIRECTS = 5
S3_LIST_TTL_S = 30.0

# What went wrong with one location.
NOT_FOUND = "not_found"  # the source does not have the file (404, no such key)
UNREACHABLE = "unreachable"  # could not connect, timed out, server error: may work later
CHECKSUM = "checksum"  # the bytes are not what the publisher says
INVALID = "invalid"  # refused for good (401/403, not a weight file, does not fit)

Progress = Callable[[int, int], None]  # (bytes done, bytes in all or 0 when not known)


def _no_progress(done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class Location:
    """One place one model's weight file may be fetched from."""

    source: str  # the configured source, as written in the settings
    kind: str  # "file" | "http" | "hub" | "s3"
    url: str  # shown in progress and errors; for "file" the path
    file_name: str  # the published name: a hash prefix in it is checked when the file is stored
    repo_id: str = ""  # hub
    revision: str = ""  # hub
    bucket: str = ""  # s3
    key: str = ""  # s3


@dataclass(frozen=True)
class Fetched:
    path: Path
    size: int
    sha256: str = ""  # when the fetch hashed it already
    verified: str = ""  # what was checked beyond the size, for the log


class FetchError(Exception):
    """One location failed: why, in words, and what kind of failure it was."""

    def __init__(self, url: str, reason: str, kind: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        self.kind = kind


class Source(Protocol):
    name: str

    def locations(self, model: CatalogModel) -> list[Location]: ...

    def provides(self, model: CatalogModel) -> bool: ...

    def fetch(self, location: Location, folder: Path, progress: Progress) -> Fetched: ...

    def describe(self) -> str: ...


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def hub_repo(model: CatalogModel) -> tuple[str, str]:
    """(repo id, revision) of a timm model's hub weights; ("", "") for none."""
    if not model.hf_hub_id:
        return "", ""
    repo, _, revision = model.hf_hub_id.partition("@")
    return repo, revision or HUB_REVISION


def published_paths(model: CatalogModel) -> list[tuple[str, str]]:
    """(path, file name) of each published file in the publishers' layout: hub files first (as timm
    loads them), then the download URL's path."""
    out = []
    repo, revision = hub_repo(model)
    if repo:
        out += [(f"/{repo}/resolve/{revision}/{name}", name) for name in HUB_FILES]
    if model.weights_url:
        path = urlsplit(model.weights_url).path
        out.append((path, unquote(path.rsplit("/", 1)[-1])))
    return out


def flat_names(model: CatalogModel) -> tuple[str, ...]:
    """Names a file of this model may have in a folder: the library's, then `<id, / -> __>` .pth/.safetensors."""
    own = model.id.replace("/", "__")
    return tuple(dict.fromkeys((*model.weight_files, f"{own}.pth", f"{own}.safetensors")))


# ---------------------------------------------------------------- offline files


@dataclass(frozen=True)
class OfflineFile:
    path: Path
    origin: str  # "package:<dist>" or "dir:<folder>"


class OfflineSources:
    """Weight files available without a download: in a folder, or shipped inside installed packages."""

    name = "offline"

    def __init__(self, folder: str | Path | None = None, packages: tuple[str, ...] = (), name: str = "offline") -> None:
        self.name = name
        self.folder = Path(folder) if folder else None
        self.packages = packages
        self._package_files: dict[str, OfflineFile] = {}
        for dist in packages:
            try:
                files = metadata.files(dist) or []
            except metadata.PackageNotFoundError:
                log.info("offline weights package not installed", extra={"package": dist})
                continue
            for entry in files:
                if entry.suffix in (".pth", ".pt", ".safetensors", ".bin"):
                    path = Path(str(entry.locate()))
                    if path.is_file():
                        self._package_files.setdefault(entry.name, OfflineFile(path, f"package:{dist}"))
        self._cache: tuple[float, dict[str, OfflineFile]] | None = None

    def available(self) -> dict[str, OfflineFile]:
        """Every offline weight file by name; the folder wins over packages."""
        found = dict(self._package_files)
        if self.folder is not None and self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.suffix in (".pth", ".pt", ".safetensors", ".bin") and path.is_file():
                    found[path.name] = OfflineFile(path, f"dir:{self.folder}")
        return found

    def _files(self) -> dict[str, OfflineFile]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > 2.0:  # a folder listing, at most every 2 s
            self._cache = (now, self.available())
        return self._cache[1]

    def refresh(self) -> None:
        self._cache = None

    def find(self, names: tuple[str, ...]) -> OfflineFile | None:
        files = self._files()
        return next((files[n] for n in names if n in files), None)

    def locations(self, model: CatalogModel) -> list[Location]:
        files = self.available()  # fresh: a fetch must see a file copied in a moment ago
        return [
            Location(self.name, "file", str(files[n].path), n, key=files[n].origin)
            for n in flat_names(model)
            if n in files
        ]

    def provides(self, model: CatalogModel) -> bool:
        return self.find(flat_names(model)) is not None

    def fetch(self, location: Location, folder: Path, progress: Progress) -> Fetched:
        path = Path(location.url)  # used where it lies: nothing to download
        if not path.is_file():
            raise FetchError(location.url, "the file is gone", NOT_FOUND)
        size = path.stat().st_size
        progress(size, size)
        return Fetched(path, size)

    def describe(self) -> str:
        where = [f"folder {self.folder}" if self.folder else "no folder (TRAINYARD_MODELZOO_OFFLINE_WEIGHTS_DIR unset)"]
        if self.name == "offline":
            where.append(f"packages {', '.join(self.packages)}" if self.packages else "no packages")
        return f"{self.name} ({' and '.join(where)})"


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Http:
    """Streaming GETs with resume: urllib3 does the HTTP (redirects included), this loop the retries."""

    pool: urllib3.PoolManager
    timeout_s: float
    attempts: int

    @classmethod
    def make(cls, timeout_s: float, attempts: int) -> Http:
        return cls(urllib3.PoolManager(num_pools=8, maxsize=4), timeout_s, attempts)

    def get(self, url: str, dest: Path, progress: Progress) -> int:
        """Download url to dest; returns its size. FetchError when it cannot."""
        done, total, last = 0, 0, ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(min(0.25 * 2**attempt, 10.0))
            headers = {"Accept-Encoding": "identity"}
            if done:
                headers["Range"] = f"bytes={done}-"
            try:
                resp = self.pool.request(
                    "GET",
                    url,
                    headers=headers,
                    preload_content=False,
                    timeout=urllib3.Timeout(connect=self.timeout_s, read=self.timeout_s),
                    retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=MAX_REDIRECTS),
                )
            except MaxRetryError as exc:
                if isinstance(exc.reason, ResponseError):  # urllib3's "too many redirects"
                    raise FetchError(url, f"more than {MAX_REDIRECTS} redirects", INVALID) from None
                last = _why(exc.reason or exc, self.timeout_s)
                continue
            except Urllib3Error as exc:
                last = _why(exc, self.timeout_s)
                continue
            try:
                if resp.status in (404, 410):
                    raise FetchError(url, f"HTTP {resp.status} {resp.reason or 'Not Found'}", NOT_FOUND)
                if resp.status in (401, 403):
                    raise FetchError(url, f"HTTP {resp.status} {resp.reason or 'Forbidden'}", INVALID)
                if resp.status >= 400:
                    last = f"HTTP {resp.status} {resp.reason or ''}".strip()
                    if resp.status >= 500 or resp.status in (408, 429):
                        continue
                    raise FetchError(url, last, INVALID)
                if resp.status == 206 and done:
                    start = _range_start(resp.headers.get("Content-Range", ""))
                    if start != done:  # a range we did not ask for: start over
                        done = 0
                        last = f"the server answered a resume at byte {start}"
                        continue
                    total = done + int(resp.headers.get("Content-Length") or 0) if not total else total
                else:  # 200: the whole file, from the start
                    done = 0
                    total = int(resp.headers.get("Content-Length") or 0)
                progress(done, total)
                with open(dest, "ab" if done else "wb") as f:
                    for chunk in resp.stream(CHUNK):
                        f.write(chunk)
                        done += len(chunk)
                        progress(done, total)
                if total and done != total:
                    last = f"the connection ended after {done} of {total} bytes"
                    continue
                return done
            except FetchError:
                raise
            except (Urllib3Error, OSError) as exc:  # a cut connection or a stall: resume on the next attempt
                last = _why(exc, self.timeout_s)
                log.info("download interrupted; resuming", extra={"url": url, "done": done, "error": last})
                continue
            finally:
                resp.release_conn()
        raise FetchError(url, f"{last} (after {self.attempts} attempt(s))", UNREACHABLE)


def _range_start(content_range: str) -> int:
    try:  # "bytes 100-199/200"
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _why(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, ReadTimeoutError) or "timed out" in str(exc).lower():
        return f"timed out (no data for {timeout_s:g} s)"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text or "Failed to resolve" in text:
        return "host not found"
    return f"{type(exc).__name__}: {text}"[:300]


class HttpLayout:
    """A mirror (http(s)://BASE, publishers' layout) or a flat folder of files by name (flat:URL)."""

    def __init__(self, name: str, base: str, http: Http, flat: bool = False) -> None:
        self.name = name
        self.base = base.rstrip("/")
        self.http = http
        self.flat = flat

    def locations(self, model: CatalogModel) -> list[Location]:
        if self.flat:
            return [Location(self.name, "http", f"{self.base}/{n}", n) for n in flat_names(model)]
        return [Location(self.name, "http", f"{self.base}{path}", name) for path, name in published_paths(model)]

    def provides(self, model: CatalogModel) -> bool:
        return bool(self.locations(model))  # a mirror cannot be listed: it is trusted to hold the layout

    def fetch(self, location: Location, folder: Path, progress: Progress) -> Fetched:
        dest = folder / location.file_name
        return Fetched(dest, self.http.get(location.url, dest, progress))

    def describe(self) -> str:
        return f"{'flat folder' if self.flat else 'mirror'} {self.base}"


# ---------------------------------------------------------------- the publishers


class _Counter:
    """What huggingface_hub takes as its tqdm_class: counts bytes into a Progress."""

    def __init__(self, progress: Progress, total: int | None = None, initial: int = 0, **_: object) -> None:
        self.progress = progress
        self.total = total or 0
        self.n = initial

    def update(self, n: int = 1) -> None:
        self.n += n
        self.progress(self.n, self.total)

    def close(self) -> None:
        pass

    def __enter__(self) -> _Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Publishers:
    """Each model's published location: the hub through huggingface_hub, URLs through Http."""

    name = "publishers"

    def __init__(self, http: Http, hf_endpoint: str) -> None:
        self.http = http
        self.hf_endpoint = hf_endpoint.rstrip("/")

    def locations(self, model: CatalogModel) -> list[Location]:
        out = []
        repo, revision = hub_repo(model)
        for name in HUB_FILES if repo else ():
            url = f"{self.hf_endpoint}/{repo}/resolve/{revision}/{name}"
            out.append(Location(self.name, "hub", url, name, repo_id=repo, revision=revision))
        if model.weights_url:
            name = unquote(urlsplit(model.weights_url).path.rsplit("/", 1)[-1])
            out.append(Location(self.name, "http", model.weights_url, name))
        return out

    def provides(self, model: CatalogModel) -> bool:
        return bool(model.weights_url or model.hf_hub_id)

    def fetch(self, location: Location, folder: Path, progress: Progress) -> Fetched:
        if location.kind == "http":
            dest = folder / location.file_name
            return Fetched(dest, self.http.get(location.url, dest, progress))
        return self._hub(location, folder, progress)

    def _hub(self, location: Location, folder: Path, progress: Progress) -> Fetched:
        import httpx2
        from huggingface_hub import get_hf_file_metadata, hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

        url = location.url
        try:  # our own HEAD first: hf_hub_download reports a plain 404 as "cannot reach the hub"
            meta = get_hf_file_metadata(url, timeout=self.http.timeout_s, endpoint=self.hf_endpoint)
            local = hf_hub_download(
                location.repo_id,
                location.file_name,
                revision=location.revision,
                endpoint=self.hf_endpoint,
                local_dir=folder / "hub",
                etag_timeout=self.http.timeout_s,
                tqdm_class=functools.partial(_Counter, progress),  # type: ignore[arg-type]
            )
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            if status in (404, 410):
                raise FetchError(url, f"HTTP {status} Not Found on the hub", NOT_FOUND) from None
            if status in (401, 403):
                raise FetchError(url, f"HTTP {status}: the repository is gated or private", INVALID) from None
            raise FetchError(url, f"HTTP {status or '?'} from the hub", UNREACHABLE) from None
        except (httpx2.HTTPError, OfflineModeIsEnabled, OSError) as exc:
            raise FetchError(url, _why(exc, self.http.timeout_s), UNREACHABLE) from None
        path = Path(local)
        sha256, size = file_sha256(path)
        if meta.size is not None and meta.size != size:
            raise FetchError(url, f"the hub says {meta.size} bytes, {size} arrived", CHECKSUM)
        etag = (meta.etag or "").strip('"').lower()
        verified = ""
        if len(etag) == 64:  # an LFS file's ETag is its sha256
            if etag != sha256:
                raise FetchError(url, f"the hub's sha256 is {etag}, the file hashes to {sha256}", CHECKSUM)
            verified = "sha256 (the hub's ETag)"
        elif len(etag) == 40:  # a file kept in git: its blob id
            blob = hashlib.sha1(f"blob {size}\0".encode())  # noqa: S324 - git's object id, not security
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    blob.update(chunk)
            if blob.hexdigest() != etag:
                raise FetchError(url, f"the hub's git blob id is {etag}, the file's is {blob.hexdigest()}", CHECKSUM)
            verified = "git blob id (the hub's ETag)"
        return Fetched(path, size, sha256, verified)

    def describe(self) -> str:
        return f"publishers (their download URLs, the hub at {self.hf_endpoint})"


# ---------------------------------------------------------------- S3


class S3Prefix:
    """s3://BUCKET/PREFIX on the platform's object store, in the publishers' layout."""

    def __init__(self, name: str, client: Minio, bucket: str, prefix: str) -> None:
        self.name = name
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._keys: tuple[float, frozenset[str]] | None = None

    def _key(self, path: str) -> str:
        return f"{self.prefix}{path}" if self.prefix else path.lstrip("/")

    def locations(self, model: CatalogModel) -> list[Location]:
        return [
            Location(self.name, "s3", f"s3://{self.bucket}/{self._key(p)}", n, bucket=self.bucket, key=self._key(p))
            for p, n in published_paths(model)
        ]

    def _listing(self) -> frozenset[str]:
        now = time.monotonic()
        if self._keys is None or now - self._keys[0] > S3_LIST_TTL_S:
            try:
                found = frozenset(
                    o.object_name
                    for o in self.client.list_objects(self.bucket, prefix=self.prefix or None, recursive=True)
                )
            except (S3Error, Urllib3Error, OSError) as exc:
                log.warning("cannot list the weights prefix", extra={"source": self.name, "error": str(exc)})
                found = frozenset()
            self._keys = (now, found)
        return self._keys[1]

    def provides(self, model: CatalogModel) -> bool:
        keys = self._listing()
        return any(loc.key in keys for loc in self.locations(model))

    def fetch(self, location: Location, folder: Path, progress: Progress) -> Fetched:
        dest = folder / location.file_name
        try:
            size = self.client.stat_object(location.bucket, location.key).size or 0
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound", "NoSuchBucket"):
                raise FetchError(location.url, "no such object", NOT_FOUND) from None
            raise FetchError(location.url, f"{exc.code}: {exc.message}", UNREACHABLE) from None
        except (Urllib3Error, OSError) as exc:
            raise FetchError(location.url, _why(exc, 0), UNREACHABLE) from None
        done, last = 0, None
        with open(dest, "wb") as f:
            for _attempt in range(3):  # the minio client retries requests; this resumes a cut body
                try:
                    resp = self.client.get_object(location.bucket, location.key, offset=done)
                    try:
                        for chunk in resp.stream(CHUNK):
                            f.write(chunk)
                            done += len(chunk)
                            progress(done, size)
                    finally:
                        resp.close()
                        resp.release_conn()
                    break
                except (S3Error, Urllib3Error, OSError) as exc:
                    last = exc
                    continue
            else:
                raise FetchError(location.url, _why(last, 0) if last else "failed", UNREACHABLE)
        if done != size:
            raise FetchError(location.url, f"the object has {size} bytes, {done} arrived", CHECKSUM)
        return Fetched(dest, size)

    def describe(self) -> str:
        return f"S3 prefix s3://{self.bucket}/{self.prefix}"


# ---------------------------------------------------------------- the chain


class SourceChain:
    """The configured sources in order."""

    def __init__(self, sources: list[Source]) -> None:
        self.sources = sources

    @classmethod
    def from_settings(
        cls,
        entries: tuple[str, ...],
        *,
        offline: OfflineSources,
        s3: Minio | None,
        hf_endpoint: str,
        timeout_s: float = 60.0,
        attempts: int = 5,
    ) -> SourceChain:
        http = Http.make(timeout_s, attempts)
        sources: list[Source] = []
        for entry in entries:
            if entry == "offline":
                sources.append(offline)
            elif entry == "publishers":
                sources.append(Publishers(http, hf_endpoint))
            elif entry.startswith("flat:file://"):
                sources.append(OfflineSources(unquote(urlsplit(entry.removeprefix("flat:")).path), name=entry))
            elif entry.startswith("flat:"):
                sources.append(HttpLayout(entry, entry.removeprefix("flat:"), http, flat=True))
            elif entry.startswith("s3://"):
                if s3 is None:
                    raise ValueError(f"weight source {entry}: no object store client")
                bucket, _, prefix = entry.removeprefix("s3://").partition("/")
                sources.append(S3Prefix(entry, s3, bucket, prefix))
            else:
                sources.append(HttpLayout(entry, entry, http))
        return cls(sources)

    def offline(self) -> OfflineSources | None:
        return next((s for s in self.sources if isinstance(s, OfflineSources) and s.name == "offline"), None)

    def provides(self, model: CatalogModel) -> bool:
        return any(s.provides(model) for s in self.sources)

    def refresh(self) -> None:
        """Forget the local folders' cached listings (a file copied in is seen at once)."""
        for source in self.sources:
            if isinstance(source, OfflineSources):
                source.refresh()

    def locations(self, model: CatalogModel) -> list[tuple[Source, Location]]:
        return [(s, loc) for s in self.sources for loc in s.locations(model)]

    def describe(self) -> str:
        return "; ".join(s.describe() for s in self.sources) or "no sources"
