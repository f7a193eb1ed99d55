"""Smoke tests of the benchmark suite (bench/): each benchmark runs in its tiny mode."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import Result, percentile, to_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_results_compare_against_their_targets():
    assert Result("b", "r", 96, "img/s", baseline=100, kind="ratio", target=0.95).passed is True
    assert Result("b", "r", 90, "img/s", baseline=100, kind="ratio", target=0.95).passed is False
    assert Result("b", "l", 2.5, "ms", baseline=2.0, kind="delta", target=1.0).passed is True
    assert Result("b", "l", 3.5, "ms", baseline=2.0, kind="delta", target=1.0).passed is False
    assert Result("b", "d", 60, "ms", kind="max", target=50).passed is False
    assert Result("b", "i", 1, "ms").passed is None
    assert percentile([1, 2, 3, 4, 5], 50) == 3 and percentile([1, 2, 3, 4, 5], 100) == 5
    md = to_markdown(
        [Result("1. x", "y", 90, "img/s", baseline=100, baseline_name="bare", kind="ratio", target=0.95)],
        {
            "started": "t",
            "quick": True,
            "seconds": 1.0,
            "machine": {
                "cpu": "c",
                "cores": 2,
                "memory_gib": 1,
                "os": "o",
                "python": "3",
                "torch": "2",
                "torch_threads": 2,
                "cuda": None,
            },
        },
    )
    assert "| y | 90.0 img/s | 100 img/s (bare) | 0.90 | >= 0.95x | **no** |" in md


def _run(tmp_path: Path, only: str, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--only", only, "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((tmp_path / "latest.json").read_text())
    assert (tmp_path / "latest.md").read_text().startswith("# trainyard benchmark report")
    assert report["machine"]["cores"] >= 1 and not report["errors"]
    return report


@pytest.mark.slow
def test_throughput_runs_both_sides(tmp_path):
    report = _run(tmp_path, "throughput", 300)
    rows = report["results"]
    assert {r["name"].split(" @")[0] for r in rows} == {"mobilenet_v2", "resnet18"}
    assert all(r["value"] > 0 and r["baseline"] > 0 and r["ratio"] > 0 for r in rows)


@pytest.mark.slow
@pytest.mark.integration
def test_service_benchmarks_against_the_local_stack(tmp_path):
    report = _run(tmp_path, "import,datapath,api,dispatch,events,memory", 900)
    benches = {r["bench"] for r in report["results"]}
    assert benches == {"2. data path", "3. import", "4. API latency", "5. dispatch", "6. events", "7. memory"}
    by = {r["bench"]: r for r in report["results"]}
    assert by["3. import"]["extra"]["images"] >= 40 and by["3. import"]["ratio"] > 0
    dispatch = [r for r in report["results"] if r["bench"] == "5. dispatch"]  # one row per trainer kind
    assert max(r["extra"]["n"] for r in dispatch) >= 5 and by["6. events"]["extra"]["n"] >= 1


@pytest.mark.slow
def test_recommendation_quality_trains_the_candidates_in_both_weight_situations(tmp_path):
    report = _run(tmp_path, "recommend", 600)
    rows = [r for r in report["results"] if r["bench"] == "8. recommendation quality"]
    balanced = [r["extra"] for r in rows if r["name"].startswith("balanced")]
    assert [b["scenario"] for b in balanced] == ["as installed", "no weights"]
    installed, fresh = balanced
    # the offline MobileNetV2 weights make it the top pick, fine-tuned from them; without weights all train from scratch
    assert installed["ranking"][0] == "tv/mobilenet_v2.imagenet1k_v1" and installed["top"]["pretrained"]
    assert not any(c["pretrained"] for c in fresh["candidates"].values()) and len(fresh["candidates"]) == 6
    assert any(r["name"].startswith("fastest") and r["value"] >= 1 for r in rows)


@pytest.mark.slow
@pytest.mark.integration
def test_evaluation_and_prediction_benchmarks_run_both_sides(tmp_path):
    report = _run(tmp_path, "evaluation,predict", 900)
    by = {(r["bench"], r["kind"]): r for r in report["results"]}
    evaluation = by[("9. evaluation", "ratio")]
    assert evaluation["value"] > 0 and evaluation["baseline"] > 0
    latency, throughput = by[("10. predict", "delta")], by[("10. predict", "ratio")]
    assert latency["value"] > 0 and latency["baseline"] > 0 and throughput["ratio"] > 0
