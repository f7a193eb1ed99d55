"""The model zoo's domain logic: browse the catalog, import weights from offline sources.

Plain and synchronous; raises services.common.errors. The catalog is read-only and in memory;
imported weights are rows in modelzoo_weights plus objects in WEIGHTS_BUCKET at
``weights/<sha256>.pth`` (the file's bytes, as the library ships them).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from services.common import objectstore
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from services.modelzoo.catalog import Catalog, CatalogFamily, CatalogModel
from services.modelzoo.models import WeightsRow
from trainyard.common.v1 import common_pb2

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

IN_STORE = "in_store"
IMPORTABLE = "importable"
UNAVAILABLE = "unavailable"

TASK_TYPE_NAMES = {
    common_pb2.TASK_TYPE_CLASSIFICATION: "classification",
    common_pb2.TASK_TYPE_DETECTION: "detection",
    common_pb2.TASK_TYPE_SEGMENTATION: "segmentation",
    common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: "instance_segmentation",
}
TASK_TYPE_NUMBERS = {name: number for number, name in TASK_TYPE_NAMES.items()}

# torch.hub / torchvision file names end in -<first hex digits of the file's sha256>.<ext>
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})\.(?:pth|pt)$")
_CHUNK = 1024 * 1024


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class StoredWeights:
    bucket: str
    key: str
    sha256: str
    size_bytes: int
    source: str
    imported_at: datetime


@dataclass(frozen=True)
class ModelView:
    """A catalog model with the state of its weights."""

    model: CatalogModel
    weight_status: str  # IN_STORE | IMPORTABLE | UNAVAILABLE
    weights: StoredWeights | None = None


@dataclass(frozen=True)
class FamilyView:
    family: CatalogFamily
    task_types: tuple[str, ...]
    variant_count: int
    weights_in_store_count: int


@dataclass(frozen=True)
class ModelQuery:
    """ListModels filters; zero values mean "any"."""

    task_type: int = 0
    family: str = ""
    pretrain_dataset: str = ""
    max_params: int = 0
    max_gflops: float = 0.0
    weights_in_store: bool = False
    query: str = ""


# ---------------------------------------------------------------- offline sources


@dataclass(frozen=True)
class OfflineFile:
    path: Path
    origin: str  # "package:<dist>" or "dir:<folder>"


class OfflineSources:
    """Weight files available without a download: in a folder, or shipped inside installed packages."""

    def __init__(self, folder: str | Path | None = None, packages: tuple[str, ...] = ()) -> None:
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
                if entry.suffix in (".pth", ".pt"):
                    path = Path(str(entry.locate()))
                    if path.is_file():
                        self._package_files.setdefault(entry.name, OfflineFile(path, f"package:{dist}"))

    def available(self) -> dict[str, OfflineFile]:
        """Every offline weight file by name; the folder wins over packages."""
        found = dict(self._package_files)
        if self.folder is not None and self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.suffix in (".pth", ".pt") and path.is_file():
                    found[path.name] = OfflineFile(path, f"dir:{self.folder}")
        return found

    def find(self, names: tuple[str, ...], available: dict[str, OfflineFile] | None = None) -> OfflineFile | None:
        available = self.available() if available is None else available
        for name in names:
            if name in available:
                return available[name]
        return None

    def describe(self) -> str:
        where = [f"folder {self.folder}" if self.folder else "no folder (TRAINYARD_MODELZOO_OFFLINE_WEIGHTS_DIR unset)"]
        where.append(f"packages {', '.join(self.packages)}" if self.packages else "no packages")
        return " and ".join(where)


def file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (or, in the legacy format, a pickle)."""
    with open(path, "rb") as f:
        head = f.read(4)
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


# ---------------------------------------------------------------- paging


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def encode_page_token(offset: int, fingerprint: str) -> str:
    raw = json.dumps({"o": offset, "q": fingerprint}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, fingerprint: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        offset = int(data["o"])
        if offset < 0:
            raise ValueError
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise InvalidArgument({"page_token": "not a token from a previous response"}) from None
    if data.get("q") != fingerprint:
        raise InvalidArgument({"page_token": "the token belongs to a request with other filters"})
    return offset


def _page_size(value: int, violations: dict[str, str]) -> int:
    if value < 0:
        violations["page_size"] = f"must not be negative, got {value}"
        return DEFAULT_PAGE_SIZE
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def _task_type(value: int, violations: dict[str, str]) -> str | None:
    if value == common_pb2.TASK_TYPE_UNSPECIFIED:
        return None
    name = TASK_TYPE_NAMES.get(value)
    if name is None:
        violations["task_type"] = f"unknown task type value {value}"
    return name


# ---------------------------------------------------------------- the zoo


class ModelZoo:
    def __init__(self, catalog: Catalog, engine: Engine, s3: Minio, offline: OfflineSources) -> None:
        self.catalog = catalog
        self.engine = engine
        self.s3 = s3
        self.offline = offline

    # -- state of weights

    def _stored(self) -> dict[str, StoredWeights]:
        with Session(self.engine) as session:
            rows = session.exec(select(WeightsRow)).all()
        return {r.model_id: _stored(r) for r in rows}

    def _view(self, model: CatalogModel, stored: dict[str, StoredWeights], available: dict) -> ModelView:
        if model.id in stored:
            return ModelView(model, IN_STORE, stored[model.id])
        if self.offline.find(model.offline_file_names, available) is not None:
            return ModelView(model, IMPORTABLE)
        return ModelView(model, UNAVAILABLE)

    # -- reads

    def get_model(self, model_id: str) -> ModelView:
        model = self.catalog.get(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not in the zoo catalog", metadata={"model_id": model_id})
        return self._view(model, self._stored(), self.offline.available())

    def list_models(
        self, query: ModelQuery, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[ModelView], str, int]:
        violations: dict[str, str] = {}
        task = _task_type(query.task_type, violations)
        size = _page_size(page_size, violations)
        if query.max_params < 0:
            violations["max_params"] = f"must be 0 (no limit) or positive, got {query.max_params}"
        if math.isnan(query.max_gflops) or query.max_gflops < 0:
            violations["max_gflops"] = f"must be 0 (no limit) or positive, got {query.max_gflops}"
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("models", query)
        offset = decode_page_token(page_token, fingerprint)

        stored = self._stored()
        available = self.offline.available()
        needle = query.query.strip().lower()
        matches: list[ModelView] = []
        for model in self.catalog.models:  # sorted by id: a stable order for paging
            if task and task not in model.task_types:
                continue
            if query.family and model.family != query.family:
                continue
            if query.pretrain_dataset and model.pretrain_dataset != query.pretrain_dataset:
                continue
            if query.max_params and model.num_params > query.max_params:
                continue
            if query.max_gflops and model.gflops > query.max_gflops:
                continue
            if query.weights_in_store and model.id not in stored:
                continue
            if needle and not any(needle in s.lower() for s in (model.id, model.family, model.architecture)):
                continue
            matches.append(self._view(model, stored, available))
        page = matches[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(matches) else ""
        return page, next_token, len(matches)

    def list_families(
        self, task_type: int = 0, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[FamilyView], str]:
        violations: dict[str, str] = {}
        task = _task_type(task_type, violations)
        size = _page_size(page_size, violations)
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("families", task)
        offset = decode_page_token(page_token, fingerprint)

        stored = self._stored()
        counts: dict[str, list[int]] = {}
        tasks: dict[str, list[str]] = {}
        for model in self.catalog.models:
            if task and task not in model.task_types:
                continue
            c = counts.setdefault(model.family, [0, 0])
            c[0] += 1
            c[1] += model.id in stored
            seen = tasks.setdefault(model.family, [])
            seen += [t for t in model.task_types if t not in seen]
        families = [
            FamilyView(
                family=self.catalog.families.get(name) or CatalogFamily(name, "", ()),
                task_types=tuple(tasks[name]),
                variant_count=c[0],
                weights_in_store_count=c[1],
            )
            for name, c in sorted(counts.items())
        ]
        page = families[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(families) else ""
        return page, next_token

    # -- weights

    def import_weights(self, model_id: str) -> ModelView:
        """Copy the model's weights from an offline source into the store (idempotent)."""
        model = self.catalog.get(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not in the zoo catalog", metadata={"model_id": model_id})
        with Session(self.engine) as session:
            row = session.get(WeightsRow, model_id)
            existing = _stored(row) if row is not None else None
        if existing is not None and self._object_ok(existing):
            return ModelView(model, IN_STORE, existing)

        source = self.offline.find(model.offline_file_names)
        if source is None:
            raise FailedPrecondition(
                f"no offline weights for {model_id!r}: looked for files named "
                f"{', '.join(model.offline_file_names)} in {self.offline.describe()}",
                reason="WEIGHTS_NOT_AVAILABLE_OFFLINE",
                metadata={"model_id": model_id, "looked_for": ",".join(model.offline_file_names)},
            )
        path = source.path
        if not _looks_like_torch_file(path):
            raise FailedPrecondition(
                f"offline weights file {path} for {model_id!r} is not a torch checkpoint (neither zip nor pickle)",
                reason="WEIGHTS_FILE_INVALID",
                metadata={"model_id": model_id, "file": str(path)},
            )
        sha256, size = file_sha256(path)
        # a library's own file name carries its hash; our `<id>.pth` names do not
        expected = _HASH_IN_NAME.search(path.name) if path.name in model.weight_files else None
        if expected and not sha256.startswith(expected.group(1)):
            raise FailedPrecondition(
                f"offline weights file {path} is corrupt or not the published file: its name says sha256 "
                f"{expected.group(1)}..., its content hashes to {sha256}",
                reason="WEIGHTS_CHECKSUM_MISMATCH",
                metadata={"model_id": model_id, "file": str(path), "sha256": sha256},
            )
        key = f"weights/{sha256}.pth"
        if not self._object_matches(key, size):
            self.s3.fput_object(
                objectstore.WEIGHTS_BUCKET,
                key,
                str(path),
                content_type="application/octet-stream",
                metadata={"sha256": sha256, "model-id": model_id},
            )
        stored = StoredWeights(
            bucket=objectstore.WEIGHTS_BUCKET,
            key=key,
            sha256=sha256,
            size_bytes=size,
            source=f"{source.origin}:{path.name}",
            imported_at=datetime.now(UTC),
        )
        with Session(self.engine) as session:
            row = session.get(WeightsRow, model_id)
            if row is None:
                row = WeightsRow(model_id=model_id)
            for name in ("bucket", "key", "sha256", "size_bytes", "source", "imported_at"):
                setattr(row, name, getattr(stored, name))
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent import of the same model won; same content address
                session.rollback()
                row = session.get(WeightsRow, model_id)
                stored = _stored(row)
        log.info(
            "imported weights",
            extra={"model_id": model_id, "sha256": sha256, "size_bytes": size, "source": stored.source, "key": key},
        )
        return ModelView(model, IN_STORE, stored)

    def _object_matches(self, key: str, size: int) -> bool:
        try:
            stat = self.s3.stat_object(objectstore.WEIGHTS_BUCKET, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise
        return stat.size == size

    def _object_ok(self, stored: StoredWeights) -> bool:
        """The recorded object is still in the store (else the import is repeated)."""
        return self._object_matches(stored.key, stored.size_bytes)


def _stored(row: WeightsRow) -> StoredWeights:
    imported = row.imported_at
    if imported.tzinfo is None:  # SQLite drops the zone; we store UTC
        imported = imported.replace(tzinfo=UTC)
    return StoredWeights(row.bucket, row.key, row.sha256, row.size_bytes, row.source, imported)
