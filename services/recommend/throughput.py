"""Training-time estimates from measured throughput tables (JSON written by tools.measure_throughput).

A table holds, per device class, images/s of real training steps for a few networks at a few
resolutions. An estimate for a network and resolution is:

- "measured": that network (library + architecture) was measured at that resolution;
- "interpolated": that network was measured at other resolutions (interpolated in log-log between
  them), or it was not measured and its throughput is derived from its GFLOPs with the measured
  effective rate (images/s x GMACs per image) of the measured networks nearest in GFLOPs;
- "nominal": no table exists for the device class; a stated nominal rate is used, and the rationale
  says so (run the measuring script on such a device to replace it).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA = "trainyard.recommend.throughput/v1"
TABLE_DIR = Path(__file__).parent / "throughput"
# Effective forward GMACs x images/s for a training step when no table was measured (stated as nominal).
NOMINAL_RATE = {"cpu": 10.0, "gpu": 2000.0}
# Inference is this many times faster than a training step when only training was measured.
EVAL_SPEEDUP = 3.0


@dataclass(frozen=True)
class Estimate:
    train_images_per_second: float
    eval_images_per_second: float
    source: str  # measured | interpolated | nominal
    basis: str  # words for the rationale


@dataclass(frozen=True)
class _Point:
    key: str
    resolution: int
    gmacs: float
    train_ips: float
    eval_ips: float


class ThroughputTable:
    def __init__(self, device_class: str, entries: list[dict], host: dict | None = None) -> None:
        self.device_class = device_class
        self.host = host or {}
        self.points = [
            _Point(
                key=f"{e['library']}/{e['architecture']}",
                resolution=int(e["resolution"]),
                gmacs=float(e["gmacs"]),
                train_ips=float(e["train_images_per_second"]),
                eval_ips=float(e.get("eval_images_per_second") or e["train_images_per_second"] * EVAL_SPEEDUP),
            )
            for e in entries
            if float(e.get("train_images_per_second", 0)) > 0 and float(e.get("gmacs", 0)) > 0
        ]

    @classmethod
    def load(cls, path: Path) -> ThroughputTable:
        data = json.loads(Path(path).read_text())
        if data.get("schema") != SCHEMA:
            raise ValueError(f"{path}: schema {data.get('schema')!r} is not {SCHEMA}")
        return cls(data["device_class"], data["entries"], data.get("host"))

    def estimate(self, library: str, architecture: str, gflops: float, default_size: int, resolution: int) -> Estimate:
        """Throughput of `library/architecture` at a square `resolution`.

        gflops is the zoo's forward cost (GMACs, as torchvision and timm publish it) at default_size.
        """
        key = f"{library}/{architecture}"
        own = sorted((p for p in self.points if p.key == key), key=lambda p: p.resolution)
        for p in own:
            if p.resolution == resolution:
                return Estimate(
                    p.train_ips, p.eval_ips, "measured", f"measured {p.train_ips:.1f} img/s at {resolution}px"
                )
        if own:
            train, evals, used = _along_resolution(own, resolution)
            return Estimate(
                train, evals, "interpolated", f"interpolated from this network measured at {used} px to {resolution}px"
            )
        cost = _scaled(gflops or 1.0, default_size or 224, resolution)
        if not self.points:
            rate = NOMINAL_RATE.get(self.device_class, NOMINAL_RATE["cpu"])
            return Estimate(
                rate / cost,
                rate * EVAL_SPEEDUP / cost,
                "nominal",
                f"nominal {rate:g} GMAC-img/s: no {self.device_class} throughput table measured",
            )
        # Effective rates of the measured points nearest in cost, weighted by closeness in log cost.
        near = sorted(self.points, key=lambda p: abs(math.log(p.gmacs) - math.log(cost)))[:4]
        weights = [1.0 / (abs(math.log(p.gmacs) - math.log(cost)) + 0.1) for p in near]
        log_train = sum(w * math.log(p.train_ips * p.gmacs) for w, p in zip(weights, near, strict=True)) / sum(weights)
        log_eval = sum(w * math.log(p.eval_ips * p.gmacs) for w, p in zip(weights, near, strict=True)) / sum(weights)
        names = sorted({p.key.split("/", 1)[1] for p in near})
        return Estimate(
            math.exp(log_train) / cost,
            math.exp(log_eval) / cost,
            "interpolated",
            f"interpolated by GFLOPs ({cost:.2f} GMACs at {resolution}px) from measured {', '.join(names)}",
        )


def _scaled(gflops: float, default_size: int, resolution: int) -> float:
    return max(gflops * (resolution / default_size) ** 2, 1e-4)


def _along_resolution(points: list[_Point], resolution: int) -> tuple[float, float, str]:
    """Log-log interpolation (extrapolation at the ends) of throughput over resolution for one network."""
    if len(points) == 1:
        p = points[0]
        factor = (p.resolution / resolution) ** 2  # throughput ~ 1 / pixels
        return p.train_ips * factor, p.eval_ips * factor, str(p.resolution)
    lower = [p for p in points if p.resolution < resolution]
    upper = [p for p in points if p.resolution > resolution]
    if lower and upper:
        a, b = lower[-1], upper[0]
    elif upper:
        a, b = upper[0], upper[1]
    else:
        a, b = lower[-2], lower[-1]
    t = (math.log(resolution) - math.log(a.resolution)) / (math.log(b.resolution) - math.log(a.resolution))

    def interp(x: float, y: float) -> float:
        return math.exp(math.log(x) + t * (math.log(y) - math.log(x)))

    return interp(a.train_ips, b.train_ips), interp(a.eval_ips, b.eval_ips), f"{a.resolution}/{b.resolution}"


def load_tables(folder: Path = TABLE_DIR) -> dict[str, ThroughputTable]:
    """Every `<device class>.json` table in folder; a bad file is logged and skipped."""
    tables: dict[str, ThroughputTable] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            table = ThroughputTable.load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("skipping throughput table", extra={"path": str(path), "error": str(exc)})
            continue
        tables[table.device_class] = table
    return tables


def table_for(tables: dict[str, ThroughputTable], device_class: str) -> ThroughputTable:
    return tables.get(device_class) or ThroughputTable(device_class, [])
