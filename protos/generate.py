"""Generate the Python stubs of every proto into the `trainyard` package.

    python protos/generate.py          # write trainyard/<area>/v1/*_pb2*.py(i)
    python protos/generate.py --check  # fail if the committed stubs are stale

The import path of each generated module matches its proto package
(`trainyard.dataset.v1.dataset_service_pb2`), so there is exactly one stub package.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
PACKAGE = "trainyard"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def generate(out_dir: Path) -> list[Path]:
    # protoc finds the mypy-protobuf plugin on PATH; it lives next to this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    protos = sorted(PROTO_ROOT.glob(f"{PACKAGE}/**/*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *(str(p) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = sorted(p for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))
    for path in generated:  # every folder on the way must be a package
        folder = path.parent
        while folder != out_dir:
            (folder / "__init__.py").touch()
            folder = folder.parent
    return [p.relative_to(out_dir) for p in generated]


def committed_stubs() -> set[Path]:
    root = REPO_ROOT / PACKAGE
    return {p.relative_to(REPO_ROOT) for p in root.rglob("*") if p.name.endswith(GENERATED_SUFFIXES)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs differ")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = generate(out)
        if args.check:
            stale = [
                str(p)
                for p in fresh
                if not (REPO_ROOT / p).exists() or not filecmp.cmp(out / p, REPO_ROOT / p, shallow=False)
            ]
            stale += [str(p) for p in committed_stubs() - set(fresh)]
            if stale:
                print("stale generated stubs (run `make protos`):", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print(f"{len(fresh)} generated stubs are up to date")
            return 0
        for stale in committed_stubs() - set(fresh):
            (REPO_ROOT / stale).unlink()
        for rel in fresh:
            target = REPO_ROOT / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(out / rel, target)
            folder = target.parent
            while folder != REPO_ROOT:
                init = folder / "__init__.py"
                if not init.exists():
                    init.touch()
                folder = folder.parent
        print(f"wrote {len(fresh)} stubs under {PACKAGE}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
