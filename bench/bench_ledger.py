"""
The ledger's re-check of unchanged documents on local disk (issue 21): < 60 s for 10,000, at most
one store read per document.

Setup (the "first run", timed too): ``--docs`` distinct files of ``--kb`` KB in an input folder;
each is hashed (:class:`ContentIndex`), its result landed with a real completion marker
(:func:`airflow_provider_mineru.landing.land_result`, one small ``full.md``) and recorded
(:meth:`LedgerStore.record_done`).

Measured, each in a fresh ``LedgerStore`` as a new run would be:

- **re-check**: ``stat`` every input, its sha256 from the content index (no byte read), its key,
  one snapshot of the ledger, :func:`plan` (which verifies each folder's completion marker by its
  fingerprint: one ``stat``). Every input must come out "reuse".
- **baseline, same run**: the same re-check without the content index: every input's bytes are
  read and hashed (what a hand-written sha256 cache without validators does).

Printed: wall time, documents per second, ledger store reads (entry files and index shards) per
document, files hashed. Not a test; rerun it on your machine::

    python bench/bench_ledger.py                  # 10,000 documents of 64 KB
    python bench/bench_ledger.py --docs 1000 --json out.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import airflow_home, machine, write_json

airflow_home()

from airflow_provider_mineru.landing import land_result  # noqa: E402
from airflow_provider_mineru.ledger import (  # noqa: E402
    Action,
    ContentIndex,
    LedgerKey,
    LedgerStore,
    PlanInput,
    local_validator,
    plan,
)
from airflow_provider_mineru.utils.safe_zip import ExtractedResult  # noqa: E402

TOKEN = "bench-token"
OPTIONS = {"model_version": "vlm", "language": "en"}


def _inputs(folder: Path, docs: int, kb: int) -> list[Path]:
    block = os.urandom(kb * 1024)
    paths = []
    for i in range(docs):
        path = folder / f"doc-{i:05d}.pdf"
        path.write_bytes(i.to_bytes(4, "big") + block)
        paths.append(path)
    return paths


def _keys(store: LedgerStore, paths: list[Path], use_index: bool) -> list[PlanInput]:
    index = ContentIndex(store.files, TOKEN)
    inputs = []
    for path in paths:
        validator = local_validator(path.stat()) if use_index else None
        digest = index.sha256(str(path), validator, lambda path=path: path.open("rb"))
        key = LedgerKey.for_file(digest, OPTIONS, "cloud")
        inputs.append(PlanInput(path.name, str(path), key, path.stem))
    index.flush()
    return inputs, index.hashed


def first_run(output: Path, paths: list[Path]) -> float:
    started = time.perf_counter()
    store = LedgerStore(output, TOKEN)
    inputs, _ = _keys(store, paths, use_index=True)
    for i, item in enumerate(inputs):

        def extract(dest, i=i):
            dest.mkdir(parents=True, exist_ok=True)
            (dest / "full.md").write_bytes(b"# page 1\n")
            return ExtractedResult.of(str(dest), ("full.md",), (), 9)

        land_result(extract, output / item.folder, identity={"task_id": f"task-{i}", "url": f"https://cdn/{i}.zip"})
        store.record_done(item.key, item.folder, source=item.source, name=item.name, task_id=f"task-{i}", pages=1)
    return time.perf_counter() - started


def re_check(output: Path, paths: list[Path], use_index: bool) -> dict:
    started = time.perf_counter()
    store = LedgerStore(output, TOKEN)
    inputs, hashed = _keys(store, paths, use_index)
    index_reads = store.files.reads
    items = plan(inputs, store)
    elapsed = time.perf_counter() - started
    reused = sum(item.action is Action.REUSE for item in items)
    if reused != len(paths):
        raise SystemExit(f"expected every document reused, got {reused} of {len(paths)}")
    return {
        "seconds": round(elapsed, 2),
        "docs_per_second": round(len(paths) / elapsed),
        "store_reads": store.files.reads,
        "entry_reads": store.files.reads - index_reads,
        "index_shard_reads": index_reads,
        "store_reads_per_doc": round(store.files.reads / len(paths), 4),
        "files_hashed": hashed,
        "reused": reused,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--kb", type=int, default=64, help="size of each input file")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mineru-bench-ledger-"))
    try:
        inputs, output = work / "in", work / "out"
        inputs.mkdir()
        paths = _inputs(inputs, args.docs, args.kb)
        first = first_run(output, paths)
        recheck = re_check(output, paths, use_index=True)
        baseline = re_check(output, paths, use_index=False)
        result = {
            "docs": args.docs,
            "kb_per_doc": args.kb,
            "first_run_seconds": round(first, 2),
            "recheck": recheck,
            "baseline_rehash": baseline,
            "machine": machine(),
        }
        print(f"documents: {args.docs} of {args.kb} KB, local disk")
        print(f"first run (hash, land, record): {first:.1f} s")
        print(
            f"re-check of unchanged documents: {recheck['seconds']} s ({recheck['docs_per_second']}/s), "
            f"store reads {recheck['store_reads']} = {recheck['entry_reads']} entries + "
            f"{recheck['index_shard_reads']} index shards ({recheck['store_reads_per_doc']} per document), "
            f"{recheck['files_hashed']} files hashed, {recheck['reused']} reused"
        )
        print(
            f"baseline, same run (no content index, every file hashed): {baseline['seconds']} s, "
            f"{baseline['files_hashed']} files hashed"
        )
        write_json(args.json, result)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
