"""Strict check that a weight file loads into an architecture, run in a subprocess: tools.weights_check
imports torch and the trainer's network registry; the zoo calls `run_check` and never imports either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK_TIMEOUT_S = 300


class CheckFailed(Exception):
    """The file could not be checked (not a state_dict, unbuildable architecture, crash)."""


def run_check(
    library: str, architecture: str, task_type: str, num_classes: int, path: Path, timeout: float = CHECK_TIMEOUT_S
) -> dict[str, list[str]]:
    """The diff of the file against the architecture, computed in a subprocess."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    cmd = [
        sys.executable,
        "-m",
        "tools.weights_check",
        "--library",
        library,
        "--architecture",
        architecture,
        "--task-type",
        task_type,
        "--num-classes",
        str(num_classes),
        "--file",
        str(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CheckFailed(f"the weights check took longer than {timeout:.0f} s") from exc
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed(
            f"the weights check crashed (exit {proc.returncode}): {proc.stderr.strip()[-1000:]}"
        ) from None
    if "error" in out:
        raise CheckFailed(out["error"])
    return {k: list(out.get(k, [])) for k in ("missing", "unexpected", "mismatched")}
