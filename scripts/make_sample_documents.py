#!/usr/bin/env python
"""
Regenerate ``dags/sample_documents/`` from the emulator's sample-document generator.

The documents are deterministic: running this twice gives byte-identical files, and the
MinerU emulator serves the same bytes at ``GET /samples/<name>``. Run from the repository root::

    python scripts/make_sample_documents.py [--check]

``--check`` writes nothing and exits 1 when a committed file differs from the generator.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mineru_emulator._samples import sample_document, sample_names

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "dags" / "sample_documents"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true", help="only check that the files are up to date")
    args = parser.parse_args(argv)
    stale: list[str] = []
    if not args.check:
        args.out.mkdir(parents=True, exist_ok=True)
    for name in sample_names():
        data = sample_document(name)
        assert data is not None
        target = args.out / name
        if args.check:
            if not target.is_file() or target.read_bytes() != data:
                stale.append(name)
            continue
        target.write_bytes(data)
        print(f"wrote {target} ({len(data)} bytes)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run scripts/make_sample_documents.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
