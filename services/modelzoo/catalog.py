"""The zoo's catalog in memory: loaded from the JSON the catalog builder writes, never from torch.

The catalog file (schema "trainyard.modelzoo.catalog/v1") is built once by
``python -m tools.catalog_builder --out PATH`` in a subprocess, so no service process
imports torch. Its location: setting TRAINYARD_MODELZOO_CATALOG when set, else
``$TRAINYARD_HOME/modelzoo/catalog.json``. A missing file is built on start, and so is a cached
one built by other versions of torch/torchvision/timm than those installed (a configured one is
used as it is).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from kernel import contract

log = logging.getLogger(__name__)

SCHEMA = "trainyard.modelzoo.catalog/v1"
LIBRARIES = ("torch", "torchvision", "timm")
# Task type short names in the catalog, as in trainyard.common.v1.TaskType without the prefix, lower case.
TASK_TYPES = tuple(contract.TASK_NAMES.values())
BUILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    dataset: str
    source: str


@dataclass(frozen=True)
class CatalogModel:
    id: str
    family: str
    variant: str
    task_types: tuple[str, ...]
    architecture: str
    library: str
    library_version: str
    pretrain_dataset: str
    pretrain_tag: str
    license: str
    num_params: int
    gflops: float
    default_input_size: int
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    reference_metrics: tuple[Metric, ...]
    pretrained_num_classes: int
    source_url: str
    weights_url: str
    hf_hub_id: str
    # The basename of the library's download URL (its hash prefix is checked; sources.flat_names adds ours).
    weight_files: tuple[str, ...]
    training_modes: tuple[str, ...] = ("general",)
    # Combos: the backbone's torchvision builder and the catalog id of its ImageNet weights.
    backbone: str = ""
    backbone_model_id: str = ""

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CatalogModel:
        return cls(
            id=d["id"],
            family=d["family"],
            variant=d["variant"],
            task_types=tuple(d["task_types"]),
            architecture=d["architecture"],
            library=d["library"],
            library_version=d.get("library_version", ""),
            pretrain_dataset=d["pretrain_dataset"],
            pretrain_tag=d["pretrain_tag"],
            license=d["license"],
            num_params=int(d["num_params"]),
            gflops=float(d["gflops"]),
            default_input_size=int(d["default_input_size"]),
            resize_size=int(d.get("resize_size") or d["default_input_size"]),
            mean=tuple(float(v) for v in d["mean"]),
            std=tuple(float(v) for v in d["std"]),
            interpolation=d.get("interpolation", "bilinear"),
            reference_metrics=tuple(Metric(**m) for m in d.get("reference_metrics", [])),
            pretrained_num_classes=int(d.get("pretrained_num_classes", 0)),
            source_url=d.get("source_url", ""),
            weights_url=d.get("weights_url", ""),
            hf_hub_id=d.get("hf_hub_id", ""),
            weight_files=tuple(d.get("weight_files", [])),
            training_modes=tuple(d.get("training_modes", ["general"])),
            backbone=d.get("backbone", ""),
            backbone_model_id=d.get("backbone_model_id", ""),
        )


@dataclass(frozen=True)
class CatalogFamily:
    name: str
    description: str
    task_types: tuple[str, ...]


@dataclass
class Catalog:
    models: list[CatalogModel]  # sorted by id
    families: dict[str, CatalogFamily]
    libraries: dict[str, str] = field(default_factory=dict)
    generated_at: str = ""
    by_id: dict[str, CatalogModel] = field(init=False)

    def __post_init__(self) -> None:
        self.models = sorted(self.models, key=lambda m: m.id)
        self.by_id = {m.id: m for m in self.models}

    def get(self, model_id: str) -> CatalogModel | None:
        return self.by_id.get(model_id)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Catalog:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not a zoo catalog: schema {data.get('schema')!r}, expected {SCHEMA!r}")
        return cls(
            models=[CatalogModel.from_json(m) for m in data["models"]],
            families={
                f["name"]: CatalogFamily(f["name"], f.get("description", ""), tuple(f.get("task_types", [])))
                for f in data["families"]
            },
            libraries=dict(data.get("libraries", {})),
            generated_at=data.get("generated_at", ""),
        )

    @classmethod
    def load(cls, path: Path) -> Catalog:
        return cls.from_json(json.loads(Path(path).read_text()))


def installed_versions() -> dict[str, str]:
    """Versions of the libraries the catalog is built from, read from package metadata (no import)."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = ""
    return out


def builder_fingerprint() -> str:
    """Hash of the code that decides the catalog's content (the builder and the network registry)."""
    import hashlib

    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for rel in ("tools/catalog_builder.py", "trainer/architectures.py"):
        digest.update((root / rel).read_bytes())
    return digest.hexdigest()[:16]


def is_current(path: Path) -> bool:
    """True when the file is a catalog built by the installed library versions and the current builder."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    return (
        data.get("schema") == SCHEMA
        and data.get("libraries") == installed_versions()
        and data.get("builder") == builder_fingerprint()
    )


def build(path: Path, timeout: float = BUILD_TIMEOUT_S) -> float:
    """Run the catalog builder in a subprocess (this process never imports torch); returns seconds taken."""
    started = time.monotonic()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "tools.catalog_builder", "--out", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"catalog builder failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return time.monotonic() - started


def ensure_catalog(path: Path, rebuild_stale: bool = True) -> Path:
    """The catalog at path, built first when missing, or when stale unless rebuild_stale is False
    (a catalog configured explicitly is used as it is, with a warning)."""
    path = Path(path)
    if path.exists() and is_current(path):
        return path
    if path.exists() and not rebuild_stale:
        log.warning("the configured model catalog was built by other library versions", extra={"path": str(path)})
        return path
    reason = "missing" if not path.exists() else "built by other library versions"
    log.info("building the model catalog", extra={"path": str(path), "reason": reason})
    seconds = build(path)
    log.info("built the model catalog", extra={"path": str(path), "seconds": round(seconds, 1)})
    return path


def shared_catalog(folder: Path) -> Path:
    """A catalog shared by everything run in one place (a test session): TRAINYARD_MODELZOO_CATALOG
    when set, else ``folder/modelzoo/catalog.json``, built on first use. For tests'
    ``catalog_path`` fixtures: ``shared_catalog(tmp_path_factory.getbasetemp())``."""
    env = os.environ.get("TRAINYARD_MODELZOO_CATALOG")
    path = Path(env) if env else Path(folder) / "modelzoo" / "catalog.json"
    return ensure_catalog(path)
