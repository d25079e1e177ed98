"""
The ledger's re-check of unchanged documents on local disk (issue 21): < 60 s for 10,000, at most
one store read per document.

Setup (the "first run", timed too): ``--docs`` distinct files of ``--kb`` KB in an input folder;
each is hashed (:class:`ContentIndex`), its result landed with a real completion marker
(:func:`airflow_provider_mineru.results.landing.land_result`, one small ``full.md``) and recorded
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
    python bench/bench_ledger.py --s3 --docs 1000 # on moto's standalone S3 server (loopback)

With ``--s3`` the inputs and ``output_path`` are in a bucket of a moto server started in its own
process; the validators come from one listing of the inputs (their ETags), the completion markers'
fingerprints from one listing of ``output_path`` (``LedgerStore.marker_fingerprints``), so the
re-check reads one entry object per document. The first run is done by 8 threads (setup only).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import airflow_home, machine, write_json

airflow_home()

from airflow_provider_mineru.ledger import (  # noqa: E402
    Action,
    ContentIndex,
    LedgerKey,
    LedgerStore,
    PlanInput,
    local_validator,
    plan,
)
from airflow_provider_mineru.results.landing import land_result  # noqa: E402
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


def _keys(store: LedgerStore, paths: list, use_index: bool, validators: dict | None = None) -> tuple[list, int]:
    index = ContentIndex(store.files, TOKEN)
    index.prefetch(str(path) for path in paths)
    inputs = []
    for path in paths:
        if not use_index:
            validator = None
        elif validators is not None:
            validator = validators.get(str(path))
        else:
            validator = local_validator(path.stat())
        digest = index.sha256(str(path), validator, lambda path=path: path.open("rb"))
        key = LedgerKey.for_file(digest, OPTIONS, "cloud")
        inputs.append(PlanInput(path.name, str(path), key, path.stem))
    index.flush()
    return inputs, index.hashed


def _land_and_record(store: LedgerStore, output, item: PlanInput, i: int) -> None:
    def extract(dest, i=i):
        if hasattr(dest, "mkdir") and not hasattr(dest, "protocol"):
            dest.mkdir(parents=True, exist_ok=True)
        with (dest / "full.md").open("wb") as handle:
            handle.write(b"# page 1\n")
        return ExtractedResult.of(str(dest), ("full.md",), (), 9)

    land_result(extract, output / item.folder, identity={"task_id": f"task-{i}", "url": f"https://cdn/{i}.zip"})
    store.record_done(item.key, item.folder, source=item.source, name=item.name, task_id=f"task-{i}", pages=1)


def first_run(output, paths: list, validators: dict | None = None, threads: int = 1) -> float:
    started = time.perf_counter()
    store = LedgerStore(output, TOKEN)
    inputs, _ = _keys(store, paths, use_index=True, validators=validators)
    if threads == 1:
        for i, item in enumerate(inputs):
            _land_and_record(store, output, item, i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda pair: _land_and_record(store, output, pair[1], pair[0]), enumerate(inputs)))
    return time.perf_counter() - started


def re_check(output, paths: list, use_index: bool, listing: Callable[[], dict] | None = None) -> dict:
    started = time.perf_counter()
    store = LedgerStore(output, TOKEN)
    validators = listing() if listing is not None else None
    inputs, hashed = _keys(store, paths, use_index, validators)
    index_reads = store.files.reads
    markers = store.marker_fingerprints() if listing is not None else None
    items = plan(inputs, store, markers=markers)
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


@contextlib.contextmanager
def _s3_bucket():
    """
    moto's standalone S3 server in its own process on loopback (so its CPU is not the measured
    process's), an ``aws_moto`` connection to it, a fresh bucket: ``s3://aws_moto@bench``.
    """
    import json
    import socket
    import subprocess

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = (
        "import logging, time\n"
        "from moto.server import ThreadedMotoServer\n"
        f"server = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False)\n"
        "server.start()\n"
        "logging.getLogger('werkzeug').setLevel(logging.WARNING)\n"
        "time.sleep(10**9)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    os.environ["AIRFLOW_CONN_AWS_MOTO"] = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
    )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    try:
        for _ in range(600):
            try:
                client.create_bucket(Bucket="bench")
                break
            except Exception:
                time.sleep(0.1)
        yield client, "s3://aws_moto@bench"
    finally:
        process.terminate()
        process.wait(30)


def _s3_inputs(client, base: str, docs: int, kb: int) -> list:
    from airflow_provider_mineru.utils.storage_paths import storage_path

    block = os.urandom(kb * 1024)

    def put(i: int) -> None:
        client.put_object(Bucket="bench", Key=f"in/doc-{i:05d}.pdf", Body=i.to_bytes(4, "big") + block)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, range(docs)))
    root = storage_path(f"{base}/in")
    return [root / f"doc-{i:05d}.pdf" for i in range(docs)]


def _s3_listing(paths: list) -> Callable[[], dict]:
    """The inputs' validators from one listing of their prefix (what resolving a prefix lists anyway)."""
    from airflow_provider_mineru.ledger import object_validator

    def listing() -> dict:
        root = paths[0].parent
        root.fs.invalidate_cache()
        found = root.fs.find(root.path, detail=True)
        by_key = {key.rsplit("/", 1)[-1]: info for key, info in found.items()}
        return {str(p): object_validator(by_key[p.name]) for p in paths}

    return listing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--kb", type=int, default=64, help="size of each input file")
    parser.add_argument("--s3", action="store_true", help="inputs and output_path on a moto S3 server")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mineru-bench-ledger-"))
    try:
        with contextlib.ExitStack() as stack:
            if args.s3:
                from airflow_provider_mineru.utils.storage_paths import storage_path

                client, base = stack.enter_context(_s3_bucket())
                paths = _s3_inputs(client, base, args.docs, args.kb)
                output, listing, where = storage_path(f"{base}/out"), _s3_listing(paths), "S3 (moto server, loopback)"
                first = first_run(output, paths, listing(), threads=8)
            else:
                inputs, output, listing, where = work / "in", work / "out", None, "local disk"
                inputs.mkdir()
                paths = _inputs(inputs, args.docs, args.kb)
                first = first_run(output, paths)
            recheck = re_check(output, paths, use_index=True, listing=listing)
            baseline = re_check(output, paths, use_index=False, listing=listing)
        result = {
            "store": where,
            "docs": args.docs,
            "kb_per_doc": args.kb,
            "first_run_seconds": round(first, 2),
            "recheck": recheck,
            "baseline_rehash": baseline,
            "machine": machine(),
        }
        print(f"documents: {args.docs} of {args.kb} KB, {where}")
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
