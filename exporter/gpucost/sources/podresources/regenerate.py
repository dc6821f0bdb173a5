"""Compile api.proto into the committed Python modules under generated/.

Run `python -m gpucost.sources.podresources.regenerate` (the Makefile's `proto`
target) after editing api.proto; a test compiles into a temp dir and fails when
the committed code differs.  grpcio-tools writes `import api_pb2` into the gRPC
module, which only works with generated/ on sys.path, so the import is
rewritten to a package-relative one here.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

__all__ = ["GENERATED_DIR", "PROTO_FILE", "ProtocError", "generate", "main"]

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_FILE = PACKAGE_DIR / "api.proto"
GENERATED_DIR = PACKAGE_DIR / "generated"

INIT_TEXT = '"""Code generated from ../api.proto by regenerate.py; do not edit."""\n'
# mypy reads .pyi stubs even where follow_imports=skip, and protoc's stubs use
# bare generics that `--strict` rejects; their types still reach our code.
STUB_HEADER = "# mypy: ignore-errors\n"
_TOP_LEVEL_IMPORT = re.compile(r"^import api_pb2 as api__pb2$", re.MULTILINE)


class ProtocError(RuntimeError):
    """protoc rejected the proto file; its messages went to stderr."""


def generate(out_dir: Path) -> list[Path]:
    """Write api_pb2.py, api_pb2.pyi, api_pb2_grpc.py and __init__.py into out_dir."""
    # Imported here so importing the client never loads the compiler.
    from grpc_tools import protoc  # type: ignore[import-untyped]  # ships no type information

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known_types = Path(protoc.__file__).resolve().parent / "_proto"
    exit_code = protoc.main(
        [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_FILE.parent}",
            f"--proto_path={well_known_types}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            PROTO_FILE.name,
        ]
    )
    if exit_code != 0:
        raise ProtocError(f"protoc exited with {exit_code} compiling {PROTO_FILE}")
    grpc_module = out_dir / "api_pb2_grpc.py"
    text, replaced = _TOP_LEVEL_IMPORT.subn("from . import api_pb2 as api__pb2", grpc_module.read_text())
    if replaced != 1:
        raise ProtocError(f"expected one `import api_pb2` in {grpc_module}, found {replaced}")
    grpc_module.write_text(text)
    stub = out_dir / "api_pb2.pyi"
    stub.write_text(STUB_HEADER + stub.read_text())
    (out_dir / "__init__.py").write_text(INIT_TEXT)
    return sorted(out_dir.iterdir())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=GENERATED_DIR, help="output folder (default: generated/)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
