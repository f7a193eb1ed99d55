"""Strict check that a weight file loads into an architecture; run in a subprocess (it imports torch).

    python -m services.modelzoo.weights_check --library L --architecture A --task-type T \
        --num-classes N --file PATH

Prints one JSON object: {"missing": [...], "unexpected": [...], "mismatched": [...]} (exit 0), or
{"error": "..."} (exit 2) when the file is not a state_dict or the architecture cannot be built.
The zoo service calls `run_check`, never importing torch itself.
"""

from __future__ import annotations

import argparse
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
        "services.modelzoo.weights_check",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", required=True)
    parser.add_argument("--architecture", required=True)
    parser.add_argument("--task-type", required=True)
    parser.add_argument("--num-classes", type=int, required=True)
    parser.add_argument("--file", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
        from trainer import architectures as A

        diff = A.check_weights(args.library, args.architecture, args.task_type, args.file, args.num_classes)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as a message
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:2000]}))
        return 2
    print(json.dumps(diff))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
