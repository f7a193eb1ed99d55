"""What the model zoo's sections share: weight states and scopes, the views they return, page tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from kernel import contract
from kernel.errors import (
    InvalidArgument,
)
from services.modelzoo import presets as presets_mod
from services.modelzoo import pulls as pulls_mod
from services.modelzoo.catalog import CatalogFamily, CatalogModel
from services.modelzoo.models import WeightsRow
from trainyard.common.v1 import common_pb2

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


def _stored(row: WeightsRow) -> StoredWeights:
    imported = row.imported_at
    if imported.tzinfo is None:  # SQLite drops the zone; we store UTC
        imported = imported.replace(tzinfo=UTC)
    return StoredWeights(row.bucket, row.key, row.sha256, row.size_bytes, row.source, imported, row.project)
