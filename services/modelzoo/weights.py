"""ModelZoo's weights: import, pull (services.modelzoo.pulls over the configured sources), export, upload,
and the strict check of a file against its architecture.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from minio.error import S3Error
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from kernel import objectstore, weightfiles
from kernel.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    TrainyardError,
    Unavailable,
)
from kernel.identity import Identity
from services.modelzoo import pulls as pulls_mod
from services.modelzoo.catalog import CatalogModel
from services.modelzoo.models import WeightsRow
from services.modelzoo.sources import (
    CHECKSUM,
    INVALID,
    UNREACHABLE,
    FetchError,
    file_sha256,
    flat_names,
)
from services.modelzoo.views import (
    _HASH_IN_NAME,
    MAX_SELECTED,
    MAX_VIOLATION_KEYS,
    PUBLIC,
    SCOPE_PROJECT,
    SCOPE_PUBLIC,
    TRAINED_PREFIX,
    ExportItem,
    ModelView,
    PullHandle,
    Selected,
    StoredWeights,
    WeightsSelection,
    _stored,
    _task_type,
)
from services.modelzoo.weights_check import CheckFailed, run_check
from trainyard.common.v1 import common_pb2

log = logging.getLogger(__name__)


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


class Weights:
    """Pre-trained weights: imports, pulls from the configured sources, exports, uploads and their checks
    (a part of ModelZoo)."""

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
