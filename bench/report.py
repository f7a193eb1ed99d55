"""Results, the machine description and the JSON / Markdown report."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass
class Result:
    """One measurement against its baseline.

    kind "ratio": passed when ratio >= target (ratio = value / baseline, both "higher is better").
    kind "max": passed when value <= target (value alone, e.g. a latency in ms).
    kind "min": passed when value >= target (value alone, e.g. points gained over the baseline).
    kind "delta": passed when value - baseline <= target (e.g. gateway overhead in ms).
    kind "within": passed when |value / baseline - 1| <= target (an estimate against the measurement).
    kind "info": no target.
    """

    bench: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    kind: str = "info"
    target: float | None = None
    extra: dict = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.kind == "info":
            return None
        if self.kind == "ratio":
            return self.ratio is not None and self.ratio >= self.target
        if self.kind == "max":
            return self.value <= self.target
        if self.kind == "min":
            return self.value >= self.target
        if self.kind == "delta":
            return self.baseline is not None and self.value - self.baseline <= self.target
        if self.kind == "within":
            return self.ratio is not None and abs(self.ratio - 1) <= self.target
        return None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ratio"] = self.ratio
        out["passed"] = self.passed
        return out


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


def machine() -> dict:
    import psutil
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    return info


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return f"{s} {unit}".strip()


def _target(r: Result) -> str:
    if r.target is None or r.kind == "info":
        return ""
    if r.kind == "ratio":
        return f">= {r.target:g}x"
    if r.kind == "max":
        return f"<= {r.target:g} {r.unit}"
    if r.kind == "within":
        return f"within {r.target:.0%}"
    return f"+<= {r.target:g} {r.unit}"


def to_markdown(results: list[Result], meta: dict) -> str:
    m = meta["machine"]
    lines = [
        "# trainyard benchmark report",
        "",
        f"Run {meta['started']} ({'quick' if meta['quick'] else 'full'} mode, {meta['seconds']:.0f} s). "
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Python {m['python']}, "
        f"torch {m['torch']} ({m['torch_threads']} threads), "
        f"GPU: {m['cuda'] or 'none'}. Load average at start (1/5/15 min): {m.get('load_average_at_start')}; "
        f"at end: {meta.get('load_average_at_end')}.",
        "",
    ]
    by_bench: dict[str, list[Result]] = {}
    for r in results:
        by_bench.setdefault(r.bench, []).append(r)
    for bench, rows in by_bench.items():
        lines += [
            f"## {bench}",
            "",
            "| measurement | platform | baseline | ratio | target | ok |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            base = f"{_fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline is not None else "-"
            ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
            ok = {True: "yes", False: "**no**", None: ""}[r.passed]
            lines.append(f"| {r.name} | {_fmt(r.value, r.unit)} | {base} | {ratio} | {_target(r)} | {ok} |")
        notes = [f"- {r.name}: {r.note}" for r in rows if r.note]
        if notes:
            lines += ["", *notes]
        lines.append("")
    if meta.get("errors"):
        lines += ["## errors", ""] + [f"- {e}" for e in meta["errors"]] + [""]
    if meta.get("notes"):
        lines += ["## notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(lines)


def write(results: list[Result], meta: dict, out_dir: Path = RESULTS_DIR) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js = out_dir / "latest.json"
    md = out_dir / "latest.md"
    js.write_text(json.dumps({**meta, "results": [r.to_dict() for r in results]}, indent=2, default=str))
    md.write_text(to_markdown(results, meta))
    return js, md


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
