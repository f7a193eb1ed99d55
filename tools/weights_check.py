"""Strict check that a weight file loads into an architecture (the zoo runs it in a subprocess:
services.modelzoo.weights_check.run_check).

    python -m tools.weights_check --library L --architecture A --task-type T --num-classes N --file PATH

Prints one JSON object: {"missing": [...], "unexpected": [...], "mismatched": [...]} (exit 0), or
{"error": "..."} (exit 2) when the file is not a state_dict or the architecture cannot be built.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


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
