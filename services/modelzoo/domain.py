"""The model zoo's domain logic: browse the catalog and the project's trained models, import weights,
register trained models, list presets.

Plain and synchronous; raises kernel.errors. The catalog is read-only and in memory (with
per-task indexes); imported weights are rows in modelzoo_weights plus objects in WEIGHTS_BUCKET at
``weights/<sha256>.pth`` (the file's bytes, as the library ships them). Their state is cached for
STATE_TTL_S seconds (and refreshed at once after an import here), so ListModels touches SQL at most
that often. Trained models (modelzoo_trained_models) belong to one project each.

A combo model ("combo/<head>+<backbone>.<tag>") has no pre-trained weights of its own: its
weight_status is that of its backbone's ImageNet weights (the catalog model `backbone_model_id`),
which a training job carries as ModelSpec.backbone_weights; importing a combo imports its backbone.

Weights have a scope. The public ones (WeightsRow.project == "") are what every project fine-tunes
from: they come from the configured source chain (services.modelzoo.sources: offline files, the
publishers, a mirror, an S3 prefix), fetched by a pull (services.modelzoo.pulls) that any number of
callers may watch, or from an upload by a platform operator. Anyone else's upload is their project's
own: that project sees and trains from it instead of the public file, and no other project is affected.

Weights are checked before they are stored: the file must load into the architecture with a strict
key (and shape) match, checked in a subprocess (services.modelzoo.weights_check; this process never
imports torch). Mismatches are INVALID_ARGUMENT with field violations weights.missing_keys,
weights.unexpected_keys and weights.mismatched_shapes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel import contract, objectstore, weightfiles
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TrainyardError,
    Unavailable,
)
from kernel.identity import Identity
from services.modelzoo import presets as presets_mod
from services.modelzoo import pulls as pulls_mod
from services.modelzoo.catalog import Catalog, CatalogFamily, CatalogModel, Metric
from services.modelzoo.models import TrainedModelRow, WeightsRow
from services.modelzoo.sources import (
    CHECKSUM,
    INVALID,
    UNREACHABLE,
    FetchError,
    OfflineSources,
    SourceChain,
    file_sha256,
    flat_names,
)
from services.modelzoo.weights_check import CheckFailed, run_check
from trainyard.common.v1 import common_pb2

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

IN_STORE = "in_store"
IMPORTABLE = "importable"
UNAVAILABLE = "unavailable"

TASK_TYPE_NAMES, TASK_TYPE_NUMBERS = contract.TASK_NAMES, contract.TASK_TYPES

# torch.hub / torchvision file names end in -<first hex digits of the file's sha256>.<ext>
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{6,64})\.(?:pth|pt)$")
_CHUNK = 1024 * 1024
STATE_TTL_S = 2.0
TRAINED_PREFIX = "trained/"
PUBLIC = ""  # WeightsRow.project of the weights every project shares
SCOPE_PROJECT = "project"
SCOPE_PUBLIC = "public"
TASK_ARTIFACTS_PREFIX = "tasks/"  # trained weights are a task's model.pt in the artifacts bucket
LIBRARIES = ("torchvision", "timm", "combo")
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_VIOLATION_KEYS = 20
MAX_SELECTED = 1000  # model ids and presets named in one PullWeights / ExportWeights


# ---------------------------------------------------------------- views


@dataclass(frozen=True)
class StoredWeights:
    bucket: str
    key: str
    sha256: str
    size_bytes: int
    source: str
    imported_at: datetime
    project: str = PUBLIC  # the project whose own upload these are; PUBLIC for the shared ones


@dataclass(frozen=True)
class Lineage:
    """Where a trained model comes from."""

    name: str
    base_model_id: str
    dataset_id: str
    dataset_version_id: str
    task_id: str
    class_names: tuple[str, ...]
    metrics: dict[str, float]
    created_at: datetime


@dataclass(frozen=True)
class ModelView:
    """A catalog (or trained) model with the state of its weights."""

    model: CatalogModel
    weight_status: str  # IN_STORE | IMPORTABLE | UNAVAILABLE
    weights: StoredWeights | None = None
    # combos: the backbone's ImageNet weights
    backbone_status: str = ""
    backbone_weights: StoredWeights | None = None
    lineage: Lineage | None = None

    @property
    def origin(self) -> str:
        return "trained" if self.lineage is not None else "catalog"


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
    origin: str = ""  # "" | "catalog" | "trained"


@dataclass(frozen=True)
class TrainedModelInput:
    """RegisterTrainedModel's request, as plain values."""

    task_id: str
    name: str
    base_model_id: str
    task_type: int
    library: str
    architecture: str
    class_names: tuple[str, ...]
    dataset_id: str
    dataset_version_id: str
    metrics: dict[str, float]
    weights_bucket: str
    weights_key: str
    weights_sha256: str
    weights_size_bytes: int
    default_input_size: int
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    request_id: str = ""


@dataclass(frozen=True)
class WeightsSelection:
    """PullWeights' and ExportWeights' selection; every set part adds models (family and task type
    together narrow each other)."""

    model_ids: tuple[str, ...] = ()
    family: str = ""
    task_type: int = 0
    preset_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Selected:
    """A catalog model whose weights a selection needs, and the selected models it serves."""

    target: CatalogModel
    for_model_ids: tuple[str, ...]


@dataclass(frozen=True)
class PullHandle:
    selected: Selected
    pull: pulls_mod.Pull


@dataclass(frozen=True)
class ExportItem:
    selected: Selected
    weights: StoredWeights


@dataclass(frozen=True)
class PresetView:
    preset: presets_mod.Preset
    weight_status: str  # of its model's weights, for the caller's project
    weights_model_id: str  # the catalog model whose weights it needs (a combo's backbone)


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
    def __init__(
        self,
        catalog: Catalog,
        engine: Engine,
        s3: Minio,
        sources: SourceChain | OfflineSources,
        work_dir: Path | None = None,
        *,
        max_concurrent_pulls: int = 2,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.s3 = s3
        self.sources = SourceChain([sources]) if isinstance(sources, OfflineSources) else sources
        self.work_dir = Path(work_dir) if work_dir else None
        self.puller = pulls_mod.Puller(self._fetch_public, max_concurrent_pulls)
        self.presets = [p for p in presets_mod.PRESETS if self._preset_ok(p)]
        self.presets_by_id = {p.id: p for p in self.presets}
        # in-memory indexes: models per task type (sorted by id), per family
        self._by_task: dict[str | None, list[CatalogModel]] = {None: list(catalog.models)}
        for task in TASK_TYPE_NAMES.values():
            self._by_task[task] = [m for m in catalog.models if task in m.task_types]
        self._lock = threading.Lock()
        self._stored_cache: tuple[float, dict[str, StoredWeights]] | None = None

    def _preset_ok(self, preset: presets_mod.Preset) -> bool:
        if self.catalog.get(preset.model_id) is None:
            log.warning("preset left out: its model is not in the catalog", extra={"preset": preset.id})
            return False
        return True

    # -- state of weights (cached)

    def _stored(self, fresh: bool = False) -> dict[tuple[str, str], StoredWeights]:
        """Every stored weight file by (scope project, model id)."""
        now = time.monotonic()
        with self._lock:
            cached = self._stored_cache
        if not fresh and cached is not None and now - cached[0] < STATE_TTL_S:
            return cached[1]
        with Session(self.engine) as session:
            rows = session.exec(select(WeightsRow)).all()
        stored = {(r.project, r.model_id): _stored(r) for r in rows}
        with self._lock:
            self._stored_cache = (now, stored)
        return stored

    def _invalidate(self) -> None:
        with self._lock:
            self._stored_cache = None

    def _status(self, model: CatalogModel, stored: dict, project: str) -> tuple[str, StoredWeights | None]:
        """The project's own upload wins over the public weights; other projects' uploads never show.
        Not in the store: IMPORTABLE when a configured source provides them."""
        for scope in (project, PUBLIC):
            if (scope, model.id) in stored:
                return IN_STORE, stored[(scope, model.id)]
        if self.sources.provides(model):
            return IMPORTABLE, None
        return UNAVAILABLE, None

    def _view(self, model: CatalogModel, stored: dict, project: str) -> ModelView:
        if model.backbone_model_id:
            backbone = self.catalog.get(model.backbone_model_id)
            if backbone is None:  # a catalog built without its backbone entry
                return ModelView(model, UNAVAILABLE, backbone_status=UNAVAILABLE)
            status, weights = self._status(backbone, stored, project)
            return ModelView(model, status, None, backbone_status=status, backbone_weights=weights)
        status, weights = self._status(model, stored, project)
        return ModelView(model, status, weights)

    # -- reads

    def get_model(self, model_id: str, project: str = "default") -> ModelView:
        if model_id.startswith(TRAINED_PREFIX):
            with Session(self.engine) as session:
                row = session.get(TrainedModelRow, (project, model_id[len(TRAINED_PREFIX) :]))
            if row is None:
                raise NotFound(f"trained model {model_id!r} does not exist", metadata={"model_id": model_id})
            return self._trained_view(row)
        model = self.catalog.get(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not in the zoo catalog", metadata={"model_id": model_id})
        # one model: read the state fresh (lists use the cache)
        self.sources.refresh()
        return self._view(model, self._stored(fresh=True), project)

    def list_models(
        self, query: ModelQuery, page_size: int = 0, page_token: str = "", project: str = "default"
    ) -> tuple[list[ModelView], str, int]:
        violations: dict[str, str] = {}
        task = _task_type(query.task_type, violations)
        size = _page_size(page_size, violations)
        if query.max_params < 0:
            violations["max_params"] = f"must be 0 (no limit) or positive, got {query.max_params}"
        if math.isnan(query.max_gflops) or query.max_gflops < 0:
            violations["max_gflops"] = f"must be 0 (no limit) or positive, got {query.max_gflops}"
        if query.origin not in ("", "catalog", "trained"):
            violations["origin"] = f"must be empty, 'catalog' or 'trained', got {query.origin!r}"
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("models", query)
        offset = decode_page_token(page_token, fingerprint)

        stored = self._stored()
        needle = query.query.strip().lower()

        def keep(model: CatalogModel) -> bool:
            if query.family and model.family != query.family:
                return False
            if query.pretrain_dataset and model.pretrain_dataset != query.pretrain_dataset:
                return False
            if query.max_params and model.num_params > query.max_params:
                return False
            if query.max_gflops and model.gflops > query.max_gflops:
                return False
            return not needle or any(needle in s.lower() for s in (model.id, model.family, model.architecture))

        matches: list[ModelView] = []
        if query.origin != "trained":
            for model in self._by_task[task]:  # sorted by id: a stable order for paging
                if not keep(model):
                    continue
                view = self._view(model, stored, project)
                if query.weights_in_store and view.weight_status != IN_STORE:
                    continue
                matches.append(view)
        if query.origin != "catalog":
            trained = [self._trained_view(r) for r in self._trained_rows(project)]
            trained = [v for v in trained if (not task or task in v.model.task_types) and keep(v.model)]
            matches = sorted(matches + trained, key=lambda v: v.model.id) if trained else matches
        page = matches[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(matches) else ""
        return page, next_token, len(matches)

    def list_families(
        self, task_type: int = 0, page_size: int = 0, page_token: str = "", project: str = "default"
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
        for model in self._by_task[task]:
            c = counts.setdefault(model.family, [0, 0])
            c[0] += 1
            c[1] += self._view(model, stored, project).weight_status == IN_STORE
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

    def import_weights(
        self,
        model_id: str,
        upload: common_pb2.ObjectRef | None = None,
        who: Identity | None = None,
        scope: str = SCOPE_PROJECT,
    ) -> ModelView:
        """Store the model's weights (idempotent without an upload): from an object in the uploads
        bucket (the caller's project's own, or public when an operator asks), else from the configured
        sources (public), waiting for the pull. A combo imports its backbone."""
        who = who or Identity()
        model, target = self._import_target(model_id)
        if upload is not None and upload.key:
            return self._import_upload(model, target, upload, who, scope)
        state = self.pull_target(target).wait()
        if state.error is not None:
            raise state.error
        return self.get_model(model.id, who.project)

    def start_import(self, model_id: str) -> tuple[CatalogModel, pulls_mod.Pull]:
        """ImportWeights without an upload, for a caller that waits on the pull itself (no thread held)."""
        model, target = self._import_target(model_id)
        return model, self.pull_target(target)

    # -- pulls: fetching public weights from the configured sources

    def select(self, selection: WeightsSelection) -> list[Selected]:
        """The catalog models whose weights a selection needs (combos: their backbones), each once."""
        violations: dict[str, str] = {}
        task = _task_type(selection.task_type, violations)
        if violations:
            raise InvalidArgument(violations)
        if not (selection.model_ids or selection.family or task or selection.preset_ids):
            raise InvalidArgument(
                {"selection": "name at least one model id, a family, a task type or a preset"},
            )
        if len(selection.model_ids) + len(selection.preset_ids) > MAX_SELECTED:
            raise InvalidArgument({"selection.model_ids": f"at most {MAX_SELECTED} ids and presets in one call"})
        wanted: list[str] = []
        for model_id in selection.model_ids:
            if not model_id.strip():
                raise InvalidArgument({"selection.model_ids": "must not hold an empty id"})
            wanted.append(model_id.strip())
        for preset_id in selection.preset_ids:
            wanted.append(self.get_preset(preset_id.strip()).model_id)
        if selection.family or task:
            if selection.family and not any(m.family == selection.family for m in self.catalog.models):
                raise NotFound(
                    f"no model family {selection.family!r} in the zoo catalog", metadata={"family": selection.family}
                )
            matches = [m.id for m in self._by_task[task] if not selection.family or m.family == selection.family]
            if not matches:
                raise NotFound(f"no catalog model of family {selection.family!r} serves {task}")
            wanted += matches
        out: dict[str, list[str]] = {}
        targets: dict[str, CatalogModel] = {}
        for model_id in dict.fromkeys(wanted):
            _, target = self._import_target(model_id)
            targets[target.id] = target
            out.setdefault(target.id, []).append(model_id)
        return [Selected(targets[t], tuple(ids)) for t, ids in out.items()]

    def pull(self, selection: WeightsSelection) -> list[PullHandle]:
        """Start (or join) a pull of each selected model's public weights; already stored ones are
        finished pulls. Watch them through Pull.snapshot."""
        return [PullHandle(sel, self.pull_target(sel.target)) for sel in self.select(selection)]

    def pull_target(self, target: CatalogModel) -> pulls_mod.Pull:
        with Session(self.engine) as session:
            row = session.get(WeightsRow, (PUBLIC, target.id))
            existing = _stored(row) if row is not None else None
        if existing is not None and self._object_ok(existing):
            return pulls_mod.finished(target.id, existing)
        return self.puller.start(target.id)

    def _fetch_public(self, target_id: str, pull: pulls_mod.Pull) -> StoredWeights:
        """Try each location of each configured source in order; the first good file is stored."""
        target = self.catalog.get(target_id)
        assert target is not None  # pulls start from catalog models
        self.sources.refresh()
        locations = self.sources.locations(target)
        if not locations:
            looked = f"looked for files named {', '.join(flat_names(target))} in " if self.sources.offline() else ""
            raise FailedPrecondition(
                f"no configured source provides the weights of {target.id!r}: {looked}{self.sources.describe()}; "
                f"upload them (trainyard models import FILE --model {target.id}), add a source "
                "(TRAINYARD_MODELZOO_WEIGHT_SOURCES), or train from scratch explicitly",
                reason="WEIGHTS_NOT_AVAILABLE",
                metadata={"model_id": target.id, "looked_for": ",".join(flat_names(target))},
            )
        failures: list[FetchError] = []

        def progress(done: int, total: int) -> None:
            if self.puller.stopping.is_set():  # a download must not hold the process at its exit
                raise Unavailable(f"the model zoo stopped while fetching {target.id!r}; pull it again")
            pull.progress(done, total)

        for source, loc in locations:
            if self.puller.stopping.is_set():
                raise Unavailable(f"the model zoo stopped while fetching {target.id!r}; pull it again")
            pull.update(state=pulls_mod.DOWNLOADING, url=loc.url, bytes_done=0, bytes_total=0)
            started = time.monotonic()
            with self._scratch() as folder:
                try:
                    fetched = source.fetch(loc, folder, progress)
                    pull.update(state=pulls_mod.CHECKING)
                    stored = self.import_file(
                        target, fetched.path, f"{loc.source}:{loc.url}", published_name=loc.file_name
                    )
                except FetchError as exc:
                    failures.append(exc)
                except Unavailable:
                    raise
                except TrainyardError as exc:  # a bad file: its checksum, its format, the strict check
                    kind = CHECKSUM if exc.reason == "WEIGHTS_CHECKSUM_MISMATCH" else INVALID
                    failures.append(FetchError(loc.url, exc.message, kind))
                else:
                    log.info(
                        "fetched weights",
                        extra={
                            "model_id": target.id,
                            "url": loc.url,
                            "size_bytes": stored.size_bytes,
                            "sha256": stored.sha256,
                            "verified": fetched.verified or "size",
                            "seconds": round(time.monotonic() - started, 2),
                        },
                    )
                    return stored
            log.warning(
                "weights source failed", extra={"model_id": target.id, "url": loc.url, "error": str(failures[-1])}
            )
        raise _pull_failure(target, failures)

    # -- export: the stored files a bundle carries

    def export(self, selection: WeightsSelection, project: str) -> list[ExportItem]:
        """The stored weights the project trains each selected model from; FAILED_PRECONDITION naming
        the ones not in the store."""
        stored = self._stored(fresh=True)
        items, missing = [], []
        for sel in self.select(selection):
            _, weights = self._status(sel.target, stored, project)
            if weights is None or not self._object_ok(weights):
                missing.append(sel.target.id)
            else:
                items.append(ExportItem(sel, weights))
        if missing:
            shown = " ".join(missing[:20]) + (f" (and {len(missing) - 20} more)" if len(missing) > 20 else "")
            raise FailedPrecondition(
                f"the weights of {len(missing)} selected model(s) are not in the store: pull them first "
                f"(trainyard models pull {shown})",
                reason="WEIGHTS_NOT_IN_STORE",
                metadata={"model_ids": ",".join(missing)[:1000]},
            )
        return items

    def read_object(self, weights: StoredWeights, chunk: int = 1024 * 1024) -> Iterator[bytes]:
        """The stored file's bytes, in chunks."""
        resp = self.s3.get_object(weights.bucket, weights.key)
        try:
            yield from resp.stream(chunk)
        finally:
            resp.close()
            resp.release_conn()

    def _import_target(self, model_id: str) -> tuple[CatalogModel, CatalogModel]:
        if model_id.startswith(TRAINED_PREFIX):
            raise FailedPrecondition(
                f"{model_id!r} is a trained model: its weights are its training task's artifacts",
                reason="TRAINED_MODEL_WEIGHTS_FIXED",
                metadata={"model_id": model_id},
            )
        model = self.catalog.get(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not in the zoo catalog", metadata={"model_id": model_id})
        target = model
        if model.backbone_model_id:
            target = self.catalog.get(model.backbone_model_id)
            if target is None:
                raise FailedPrecondition(
                    f"the backbone {model.backbone_model_id!r} of {model_id!r} is not in the catalog",
                    metadata={"model_id": model_id},
                )
        return model, target

    def _upload_scope(self, who: Identity, scope: str, field: str) -> str:
        """The WeightsRow.project an upload lands in: the caller's project, or PUBLIC for an operator."""
        if scope == SCOPE_PUBLIC:
            if not who.operator:
                raise PermissionDenied(
                    "only a platform operator may replace the public weights every project trains from; "
                    f"leave {field} unset to upload weights for this project only",
                    metadata={"field": field, "project": who.project},
                )
            return PUBLIC
        return who.project

    def _import_upload(
        self, model: CatalogModel, target: CatalogModel, upload: common_pb2.ObjectRef, who: Identity, scope: str
    ) -> ModelView:
        owner = self._upload_scope(who, scope, "scope")
        bucket = upload.bucket or objectstore.UPLOADS_BUCKET
        if bucket != objectstore.UPLOADS_BUCKET:
            raise InvalidArgument(
                {"upload.bucket": f"must be {objectstore.UPLOADS_BUCKET!r} (or empty), got {bucket!r}"}
            )
        with self._scratch() as folder:
            path = folder / "upload.pth"
            try:
                self.s3.fget_object(bucket, upload.key, str(path))
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                    raise NotFound(
                        f"upload object {bucket}/{upload.key} does not exist", metadata={"key": upload.key}
                    ) from None
                raise
            self.import_file(
                target,
                path,
                f"upload:{bucket}/{upload.key}",
                expected_sha256=upload.sha256,
                expected_size=upload.size_bytes,
                field_prefix="upload",
                project=owner,
                imported_by=who.principal,
            )
        return self.get_model(model.id, who.project)

    def check_upload(self, model_id: str, who: Identity, scope: str) -> None:
        """What UploadWeights can refuse before the file is sent: the model and the scope."""
        self._import_target(model_id)
        self._upload_scope(who, scope, "header.scope")

    def import_uploaded_file(
        self,
        model_id: str,
        path: Path,
        expected_sha256: str = "",
        expected_size: int = 0,
        who: Identity | None = None,
        scope: str = SCOPE_PROJECT,
        origin: str = "",
    ) -> ModelView:
        """UploadWeights: a file the client streamed (already on local disk); `origin` is where the
        client says it came from (a bundle's manifest), recorded with it."""
        who = who or Identity()
        owner = self._upload_scope(who, scope, "header.scope")
        model, target = self._import_target(model_id)
        self.import_file(
            target,
            path,
            f"stream:{origin}" if origin else "stream",
            expected_sha256=expected_sha256,
            expected_size=expected_size,
            field_prefix="header",
            project=owner,
            imported_by=who.principal,
        )
        return self.get_model(model.id, who.project)

    def _scratch(self):
        if self.work_dir is not None:
            self.work_dir.mkdir(parents=True, exist_ok=True)
        return _TempDir(self.work_dir)

    def import_file(
        self,
        target: CatalogModel,
        path: Path,
        source: str,
        *,
        published_name: str = "",
        expected_sha256: str = "",
        expected_size: int = 0,
        field_prefix: str = "",
        project: str = PUBLIC,
        imported_by: str = "",
    ) -> StoredWeights:
        """Check a weight file (format, checksums, strict load into the architecture), store it, record
        it for `project` (PUBLIC: every project's). `published_name`: the name the publisher gave the
        file, whose hash prefix (resnet18-f37072fd.pth) the content must match."""
        model_id = target.id
        pre = f"{field_prefix}." if field_prefix else ""
        fmt = weightfiles.file_format(path)
        if not fmt:
            what = "neither a torch checkpoint (zip or pickle) nor safetensors"
            if field_prefix:
                raise InvalidArgument({f"{pre}key": f"the file is {what}"})
            raise FailedPrecondition(
                f"the file is {what}",
                reason="WEIGHTS_FILE_INVALID",
                metadata={"model_id": model_id, "file": str(path)},
            )
        sha256, size = file_sha256(path)
        if expected_size and expected_size != size:
            raise InvalidArgument({f"{pre}size_bytes": f"says {expected_size} bytes, the file has {size}"})
        if expected_sha256 and expected_sha256.lower() != sha256:
            raise InvalidArgument({f"{pre}sha256": f"says {expected_sha256}, the file hashes to {sha256}"})
        # a library's own file name carries its hash; our `<id>.pth` names and the hub's do not
        expected = _HASH_IN_NAME.search(published_name) if published_name else None
        if expected and not sha256.startswith(expected.group(1)):
            raise FailedPrecondition(
                f"corrupt or not the published file: its name {published_name} says sha256 "
                f"{expected.group(1)}..., its content hashes to {sha256}",
                reason="WEIGHTS_CHECKSUM_MISMATCH",
                metadata={"model_id": model_id, "file": str(path), "sha256": sha256},
            )
        self._strict_check(target, path, fetched=not field_prefix)
        key = f"weights/{sha256}{weightfiles.SUFFIXES[fmt]}"
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
            source=source[:1024],
            imported_at=datetime.now(UTC),
            project=project,
        )
        with Session(self.engine) as session:
            row = session.get(WeightsRow, (project, model_id))
            replaced = row.sha256 if row is not None else ""
            if row is None:
                row = WeightsRow(project=project, model_id=model_id)
            for name in ("bucket", "key", "sha256", "size_bytes", "source", "imported_at"):
                setattr(row, name, getattr(stored, name))
            row.imported_by = imported_by[:200]
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent import of the same model won; same content address
                session.rollback()
                row = session.get(WeightsRow, (project, model_id))
                stored = _stored(row)
        self._invalidate()
        log.info(
            "imported weights",
            extra={
                "model_id": model_id,
                "scope": project or "public",
                "imported_by": imported_by,
                "sha256": sha256,
                "replaced_sha256": replaced,
                "size_bytes": size,
                "source": stored.source,
                "key": key,
            },
        )
        return stored

    def _strict_check(self, target: CatalogModel, path: Path, fetched: bool = False) -> None:
        """INVALID_ARGUMENT naming the keys for an upload; FAILED_PRECONDITION (WEIGHTS_DO_NOT_FIT)
        for a file from a configured source, which is no argument of the caller's."""
        task = target.task_types[0]
        try:
            diff = run_check(target.library, target.architecture, task, target.pretrained_num_classes, path)
        except CheckFailed as exc:
            if fetched:
                raise FailedPrecondition(
                    f"cannot be loaded into {target.architecture}: {exc}", reason="WEIGHTS_DO_NOT_FIT"
                ) from None
            raise InvalidArgument({"weights": f"cannot be loaded into {target.architecture}: {exc}"}) from None
        violations = {}
        for name, label in (
            ("missing", "missing_keys"),
            ("unexpected", "unexpected_keys"),
            ("mismatched", "mismatched_shapes"),
        ):
            keys = diff[name]
            if keys:
                more = f" (and {len(keys) - MAX_VIOLATION_KEYS} more)" if len(keys) > MAX_VIOLATION_KEYS else ""
                violations[f"weights.{label}"] = f"{len(keys)} keys: {', '.join(keys[:MAX_VIOLATION_KEYS])}{more}"
        if violations:
            message = f"the weights do not load into {target.library} {target.architecture} with a strict key match"
            if fetched:
                detail = "; ".join(f"{k.removeprefix('weights.')}: {v}" for k, v in violations.items())
                raise FailedPrecondition(f"{message} ({detail})", reason="WEIGHTS_DO_NOT_FIT")
            raise InvalidArgument(violations, message=message)

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

    # -- trained models

    def _trained_rows(self, project: str) -> list[TrainedModelRow]:
        with Session(self.engine) as session:
            return list(session.exec(select(TrainedModelRow).where(TrainedModelRow.project == project)).all())

    def _trained_view(self, row: TrainedModelRow) -> ModelView:
        base = self.catalog.get(row.base_model_id)
        family = base.family if base is not None else row.architecture.split("+")[0]
        metrics = {k: float(v) for k, v in json.loads(row.metrics_json).items()}
        classes = tuple(json.loads(row.class_names_json))
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        model = CatalogModel(
            id=f"{TRAINED_PREFIX}{row.task_id}",
            family=family,
            variant=row.architecture,
            task_types=(row.task_type,),
            architecture=row.architecture,
            library=row.library,
            library_version=base.library_version if base is not None else "",
            pretrain_dataset=f"dataset:{row.dataset_id}",
            pretrain_tag=row.dataset_version_id,
            license=base.license if base is not None else "",
            num_params=base.num_params if base is not None else 0,
            gflops=base.gflops if base is not None else 0.0,
            default_input_size=row.default_input_size,
            resize_size=row.default_input_size,
            mean=tuple(json.loads(row.mean_json)),
            std=tuple(json.loads(row.std_json)),
            interpolation=base.interpolation if base is not None else "bilinear",
            reference_metrics=tuple(
                Metric(name, value, f"dataset:{row.dataset_version_id}", f"task:{row.task_id}")
                for name, value in sorted(metrics.items())
            ),
            pretrained_num_classes=len(classes),
            source_url=f"task:{row.task_id}",
            weights_url="",
            hf_hub_id="",
            weight_files=(),
            training_modes=("retraining",),
            backbone=base.backbone if base is not None else "",
            backbone_model_id="",
        )
        weights = StoredWeights(
            row.weights_bucket,
            row.weights_key,
            row.weights_sha256,
            row.weights_size_bytes,
            f"task:{row.task_id}",
            created,
        )
        lineage = Lineage(
            name=row.name,
            base_model_id=row.base_model_id,
            dataset_id=row.dataset_id,
            dataset_version_id=row.dataset_version_id,
            task_id=row.task_id,
            class_names=classes,
            metrics=metrics,
            created_at=created,
        )
        return ModelView(model, IN_STORE, weights, lineage=lineage)

    def get_trained_model_row(self, model_id: str, project: str) -> TrainedModelRow:
        """The project's trained model `trained/<task id>`: INVALID_ARGUMENT for another id, NOT_FOUND."""
        task_id = model_id.removeprefix(TRAINED_PREFIX)
        if not model_id.startswith(TRAINED_PREFIX) or not _TASK_ID.fullmatch(task_id):
            raise InvalidArgument({"model_id": f"must be a trained model id, {TRAINED_PREFIX}<task id>"})
        with Session(self.engine) as session:
            row = session.get(TrainedModelRow, (project, task_id))
        if row is None:
            raise NotFound(
                f"trained model {model_id!r} not found in project {project!r}", metadata={"model_id": model_id}
            )
        return row

    def delete_trained_model(self, model_id: str, project: str) -> None:
        """Remove the trained model from the project's zoo; its weights stay with its training task."""
        row = self.get_trained_model_row(model_id, project)
        with Session(self.engine) as session, session.begin():
            stored = session.get(TrainedModelRow, (project, row.task_id))
            if stored is not None:
                session.delete(stored)
        log.info("deleted trained model", extra={"project": project, "model_id": model_id})

    def register_trained_model(self, req: TrainedModelInput, project: str = "default") -> ModelView:
        """Add (idempotently) a trained model to the project's zoo as `trained/<task_id>`."""
        violations: dict[str, str] = {}
        if not _TASK_ID.fullmatch(req.task_id):
            violations["task_id"] = f"must be 1-128 letters, digits, '_', '.', '-', got {req.task_id!r}"
        if not req.name.strip() or len(req.name) > 256:
            violations["name"] = "must be 1-256 characters"
        task = TASK_TYPE_NAMES.get(req.task_type)
        if task is None:
            violations["task_type"] = f"must be a task type, got {req.task_type}"
        if req.library not in LIBRARIES:
            violations["library"] = f"must be one of {', '.join(LIBRARIES)}, got {req.library!r}"
        if not req.architecture or len(req.architecture) > 256:
            violations["architecture"] = "must be 1-256 characters"
        if not req.class_names or any(not c for c in req.class_names):
            violations["class_names"] = "must list at least one non-empty class name"
        elif len(set(req.class_names)) != len(req.class_names):
            violations["class_names"] = "must be unique"
        if not req.dataset_id:
            violations["dataset_id"] = "must name the dataset the model was trained on"
        if not req.dataset_version_id:
            violations["dataset_version_id"] = "must name the dataset version the model was trained on"
        if not req.weights_key:
            violations["weights.key"] = "must name the trained weights object (model.pt)"
        if req.weights_bucket != objectstore.ARTIFACTS_BUCKET:
            violations["weights.bucket"] = f"must be the training artifacts bucket {objectstore.ARTIFACTS_BUCKET!r}"
        if req.weights_key and not req.weights_key.startswith(TASK_ARTIFACTS_PREFIX):
            violations["weights.key"] = f"must be a training task's artifact ({TASK_ARTIFACTS_PREFIX}<task id>/...)"
        if req.weights_sha256 and not _SHA256.fullmatch(req.weights_sha256):
            violations["weights.sha256"] = "must be 64 lower-case hex digits or empty"
        if req.weights_size_bytes < 0:
            violations["weights.size_bytes"] = "must not be negative"
        if not 0 <= req.default_input_size <= 4096:
            violations["default_input_size"] = f"must be in 0..4096, got {req.default_input_size}"
        for name, values in (("mean", req.mean), ("std", req.std)):
            if values and (len(values) != 3 or not all(math.isfinite(v) for v in values)):
                violations[name] = "must be empty or 3 finite numbers"
        if any(v <= 0 for v in req.std):
            violations["std"] = "must be positive"
        bad_metrics = [
            k for k, v in req.metrics.items() if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", k) or math.isnan(v)
        ]
        if bad_metrics:
            violations["metrics"] = f"names must be snake_case and values numbers: {', '.join(sorted(bad_metrics)[:5])}"
        base: CatalogModel | None = None
        if not req.base_model_id:
            violations["base_model_id"] = "must name the model the training started from"
        elif req.base_model_id.startswith(TRAINED_PREFIX):
            try:
                base = self.get_model(req.base_model_id, project).model
            except NotFound:
                violations["base_model_id"] = f"no trained model {req.base_model_id!r} in this project"
        else:
            base = self.catalog.get(req.base_model_id)
            if base is None:
                violations["base_model_id"] = f"{req.base_model_id!r} is not in the zoo catalog"
        if violations:
            raise InvalidArgument(violations)

        with Session(self.engine) as session:
            if req.request_id:
                prior = session.exec(
                    select(TrainedModelRow).where(
                        TrainedModelRow.project == project, TrainedModelRow.request_id == req.request_id
                    )
                ).first()
                if prior is not None:
                    if prior.task_id != req.task_id:
                        raise AlreadyExists(
                            f"request_id {req.request_id!r} already registered trained/{prior.task_id}",
                            metadata={"request_id": req.request_id},
                        )
                    return self._trained_view(prior)
            existing = session.get(TrainedModelRow, (project, req.task_id))
            if existing is not None:
                if (existing.weights_bucket, existing.weights_key, existing.weights_sha256) == (
                    req.weights_bucket,
                    req.weights_key,
                    req.weights_sha256,
                ):
                    return self._trained_view(existing)
                raise AlreadyExists(
                    f"trained/{req.task_id} is already registered with other weights",
                    metadata={"model_id": f"{TRAINED_PREFIX}{req.task_id}"},
                )
            mean = req.mean or (base.mean if base is not None else contract.IMAGENET_MEAN)
            std = req.std or (base.std if base is not None else contract.IMAGENET_STD)
            row = TrainedModelRow(
                project=project,
                task_id=req.task_id,
                request_id=req.request_id or None,
                name=req.name.strip(),
                base_model_id=req.base_model_id,
                task_type=task,
                library=req.library,
                architecture=req.architecture,
                class_names_json=json.dumps(list(req.class_names)),
                metrics_json=json.dumps({k: float(v) for k, v in sorted(req.metrics.items())}),
                mean_json=json.dumps([float(v) for v in mean]),
                std_json=json.dumps([float(v) for v in std]),
                dataset_id=req.dataset_id,
                dataset_version_id=req.dataset_version_id,
                default_input_size=req.default_input_size or (base.default_input_size if base is not None else 224),
                weights_bucket=req.weights_bucket,
                weights_key=req.weights_key,
                weights_sha256=req.weights_sha256,
                weights_size_bytes=req.weights_size_bytes,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent registration of the same task or request won
                session.rollback()
                existing = session.get(TrainedModelRow, (project, req.task_id))
                if existing is None:
                    raise
                return self._trained_view(existing)
            session.refresh(row)
            log.info(
                "registered trained model",
                extra={"project": project, "task_id": req.task_id, "base_model_id": req.base_model_id},
            )
            return self._trained_view(row)

    # -- presets

    def list_presets(
        self, task_type: int = 0, data_type: int = 0, page_size: int = 0, page_token: str = "", project: str = "default"
    ) -> tuple[list[PresetView], str]:
        violations: dict[str, str] = {}
        task = _task_type(task_type, violations)
        size = _page_size(page_size, violations)
        data = None
        if data_type:
            data = common_pb2.DataType.Name(data_type) if data_type in common_pb2.DataType.values() else None
            if data is None:
                violations["data_type"] = f"unknown data type value {data_type}"
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("presets", task, data)
        offset = decode_page_token(page_token, fingerprint)
        matches = [
            p
            for p in sorted(self.presets, key=lambda p: p.id)
            if (not task or p.task_type == task) and (not data or p.data_type == data)
        ]
        page = matches[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(matches) else ""
        stored = self._stored()
        return [self._preset_view(p, stored, project) for p in page], next_token

    def get_preset(self, preset_id: str) -> presets_mod.Preset:
        preset = self.presets_by_id.get(preset_id)
        if preset is None:
            raise NotFound(f"preset {preset_id!r} does not exist", metadata={"preset_id": preset_id})
        return preset

    def preset_view(self, preset_id: str, project: str = "default") -> PresetView:
        """The preset with whether it can train now (its weights' state for the project)."""
        return self._preset_view(self.get_preset(preset_id), self._stored(fresh=True), project)

    def _preset_view(self, preset: presets_mod.Preset, stored: dict, project: str) -> PresetView:
        model = self.catalog.by_id[preset.model_id]  # presets naming no catalog model were left out
        view = self._view(model, stored, project)
        return PresetView(preset, view.weight_status, model.backbone_model_id or model.id)


def _pull_failure(target: CatalogModel, failures: list[FetchError]) -> TrainyardError:
    """The error of a pull whose every location failed: UNAVAILABLE when a source could not be
    reached (it may work later), else FAILED_PRECONDITION; the message names each URL and why."""
    tried = "; ".join(str(f) for f in failures)
    metadata = {"model_id": target.id, "urls": " ".join(f.url for f in failures)[:1000]}
    kinds = {f.kind for f in failures}
    hint = f" (or upload them: trainyard models import FILE --model {target.id})"
    if UNREACHABLE in kinds:
        return Unavailable(
            f"could not reach a source of the weights of {target.id!r}: {tried}",
            reason="WEIGHTS_SOURCE_UNAVAILABLE",
            metadata=metadata,
        )
    if CHECKSUM in kinds:
        return FailedPrecondition(
            f"no good copy of the weights of {target.id!r}: {tried}{hint}",
            reason="WEIGHTS_CHECKSUM_MISMATCH",
            metadata=metadata,
        )
    if INVALID in kinds:
        return FailedPrecondition(
            f"no usable copy of the weights of {target.id!r}: {tried}{hint}",
            reason="WEIGHTS_DO_NOT_FIT",
            metadata=metadata,
        )
    return FailedPrecondition(
        f"no configured source has the weights of {target.id!r}: {tried}{hint}",
        reason="WEIGHTS_NOT_FOUND_AT_SOURCES",
        metadata=metadata,
    )


class _TempDir:
    """A scratch folder removed on exit (under the zoo's work dir when one is set)."""

    def __init__(self, parent: Path | None) -> None:
        self.parent = parent
        self.path: Path | None = None

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="zoo-", dir=self.parent))
        return self.path

    def __exit__(self, *exc) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


def _stored(row: WeightsRow) -> StoredWeights:
    imported = row.imported_at
    if imported.tzinfo is None:  # SQLite drops the zone; we store UTC
        imported = imported.replace(tzinfo=UTC)
    return StoredWeights(row.bucket, row.key, row.sha256, row.size_bytes, row.source, imported, row.project)
