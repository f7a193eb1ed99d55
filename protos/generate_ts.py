"""Generate the TypeScript client (clients/typescript/gen) with `buf generate` and protoc-gen-es from npm.

    python protos/generate_ts.py          # write clients/typescript/gen/**/*_pb.{js,d.ts}
    python protos/generate_ts.py --check  # fail if the committed client is stale

Both tools run locally from node_modules (`npm ci` at the repository root). Besides trainyard's protos the
client has google/rpc/error_details.proto (BadRequest, ErrorInfo, RetryInfo: the details of every error),
taken from googleapis-common-protos, the same file the Python stubs use.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from google.rpc import error_details_pb2

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
OUT = REPO_ROOT / "clients" / "typescript" / "gen"
BUF = REPO_ROOT / "node_modules" / ".bin" / "buf"
PLUGIN = REPO_ROOT / "node_modules" / ".bin" / "protoc-gen-es"
GOOGLE_RPC = Path(error_details_pb2.__file__).parent


def generate(out_dir: Path) -> list[Path]:
    missing = [str(p.relative_to(REPO_ROOT)) for p in (BUF, PLUGIN) if not p.exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: run `npm ci` at the repository root")
    template = PROTO_ROOT / "buf.gen.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "googleapis"
        (extra / "google" / "rpc").mkdir(parents=True)
        shutil.copy(GOOGLE_RPC / "error_details.proto", extra / "google" / "rpc" / "error_details.proto")
        (extra / "buf.yaml").write_text("version: v2\n")
        for source in (PROTO_ROOT, extra):
            subprocess.run(
                [str(BUF), "generate", str(source), "--template", str(template), "-o", str(out_dir)],
                cwd=REPO_ROOT,
                check=True,
            )
    generated = out_dir / "gen"
    return sorted(p.relative_to(generated) for p in generated.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if the committed client differs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = generate(out)
        committed = {p.relative_to(OUT) for p in OUT.rglob("*") if p.is_file()} if OUT.exists() else set()
        if args.check:
            stale = [
                str(p)
                for p in fresh
                if not (OUT / p).exists() or not filecmp.cmp(out / "gen" / p, OUT / p, shallow=False)
            ]
            stale += [str(p) for p in committed - set(fresh)]
            if stale:
                print("stale TypeScript client (run `make protos-ts`):", *stale, sep="\n  ", file=sys.stderr)
                return 1
            print(f"{len(fresh)} generated TypeScript files are up to date")
            return 0
        if OUT.exists():
            shutil.rmtree(OUT)
        shutil.copytree(out / "gen", OUT)
        print(f"wrote {len(fresh)} files under {OUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
