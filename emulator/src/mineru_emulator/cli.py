"""
``mineru-emulator``: run the MinerU API emulator from the command line.

Serve until Ctrl-C / SIGTERM::

    mineru-emulator --port 8710 --token emulator-token

or run one command against a fresh emulator on a free port, with
``AIRFLOW_CONN_MINERU_DEFAULT`` set in its environment, and exit with its exit code::

    mineru-emulator --exec airflow dags test mineru_parse_files
    mineru-emulator -- python my_script.py
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

from mineru_emulator.server import MinerUEmulator, Timings

DEFAULT_PORT = 8710
DEFAULT_TOKEN = "emulator-token"
CONN_ENV = "AIRFLOW_CONN_MINERU_DEFAULT"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mineru-emulator`` (without the ``--exec`` command part)."""
    defaults = Timings()
    parser = argparse.ArgumentParser(
        prog="mineru-emulator",
        description="A local emulator of the MinerU document-parsing API.",
        epilog="--exec CMD... (or -- CMD...) must come last: it runs CMD against an emulator on a free port "
        f"with {CONN_ENV} set, and exits with CMD's exit code.",
    )
    parser.add_argument(
        "--flavor",
        choices=("cloud", "mineru-api"),
        default="cloud",
        help="API to speak: cloud (the v4 API, default) or mineru-api (the open-source server's V1 API; "
        "--token is its --api-key)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help=f"port (default: {DEFAULT_PORT}; a free port with --exec)"
    )
    parser.add_argument("--token", default=DEFAULT_TOKEN, help=f"accepted bearer token (default: {DEFAULT_TOKEN})")
    parser.add_argument("--prefix", default="/api/v4", help="API path prefix (default: /api/v4)")
    parser.add_argument("--uid", default="emulator-uid", help="account uid for callback checksums")
    parser.add_argument("--page-quota", type=int, default=None, help="total pages allowed (default: unlimited)")
    parser.add_argument("--pending", type=float, default=defaults.pending, help="seconds in 'pending'")
    parser.add_argument("--per-page", type=float, default=defaults.per_page, help="seconds of 'running' per page")
    parser.add_argument("--converting", type=float, default=defaults.converting, help="seconds in 'converting'")
    parser.add_argument(
        "--fetch-timeout", type=float, default=defaults.fetch_timeout, help="timeout fetching task URLs"
    )
    parser.add_argument(
        "--callback-backoff", type=float, default=defaults.callback_backoff, help="callback retry backoff unit"
    )
    parser.add_argument("--upload-url-ttl", type=float, default=86400.0, help="seconds upload URLs stay valid")
    parser.add_argument("--auth-error-style", choices=("http401", "envelope"), default="http401")
    parser.add_argument("--member-prefix", choices=("stem", "id"), default="stem")
    parser.add_argument("--max-file-bytes", type=int, default=200 * 1024 * 1024)
    parser.add_argument("--max-pages", type=int, default=600)
    parser.add_argument("--max-batch-files", type=int, default=200)
    parser.add_argument("--expired-token", action="append", default=[], help="a token answered with A0211 (repeatable)")
    parser.add_argument(
        "--offline-demo",
        action="store_true",
        help="always serve MinerU's public demo URLs from the built-in stand-ins (no network)",
    )
    parser.add_argument("--log-level", default="INFO", help="log level of the request log (default: INFO)")
    return parser


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Split ``argv`` at ``--exec`` or ``--``; the rest is the command to run."""
    for index, arg in enumerate(argv):
        if arg in ("--exec", "--"):
            return argv[:index], argv[index + 1 :]
    return argv, None


def make_emulator(args: argparse.Namespace, *, port: int) -> Any:
    """An emulator configured from parsed arguments (``--flavor mineru-api``: the V1 room)."""
    if getattr(args, "flavor", "cloud") == "mineru-api":
        from mineru_emulator.mineru_api import MinerUApiEmulator

        return MinerUApiEmulator(api_key=args.token, host=args.host, port=port)
    timings = Timings(
        pending=args.pending,
        per_page=args.per_page,
        converting=args.converting,
        fetch_timeout=args.fetch_timeout,
        callback_backoff=args.callback_backoff,
    )
    return MinerUEmulator(
        token=args.token,
        prefix=args.prefix,
        host=args.host,
        port=port,
        timings=timings,
        uid=args.uid,
        page_quota=args.page_quota,
        upload_url_ttl=args.upload_url_ttl,
        auth_error_style=args.auth_error_style,
        max_file_bytes=args.max_file_bytes,
        max_pages=args.max_pages,
        max_batch_files=args.max_batch_files,
        member_prefix=args.member_prefix,
        expired_tokens=args.expired_token,
        fetch_demo_urls=not args.offline_demo,
    )


def _run_command(emulator: Any, command: list[str]) -> int:
    env = dict(os.environ)
    env[CONN_ENV] = emulator.connection_json()
    env["MINERU_EMULATOR_URL"] = emulator.base_url
    print(f"MinerU emulator at {emulator.base_url}; running: {' '.join(command)}", file=sys.stderr, flush=True)
    try:
        child = subprocess.Popen(command, env=env)
    except OSError as exc:
        print(f"mineru-emulator: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    previous = signal.getsignal(signal.SIGTERM)

    def forward(signum: int, frame: Any) -> None:
        child.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                code = child.wait()
                break
            except KeyboardInterrupt:  # the child got the same SIGINT; wait for it to finish
                continue
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    return code if code >= 0 else 128 - code


def _serve(emulator: Any) -> int:
    stop = threading.Event()

    def on_term(signum: int, frame: Any) -> None:
        stop.set()

    # Before the banner: whoever reads the export line may send SIGTERM at once.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_term)
    print(f"MinerU emulator listening on {emulator.base_url}", flush=True)
    print(f"Token: {emulator.token}", flush=True)
    print("Point Airflow at it with:", flush=True)
    print(f"export {CONN_ENV}='{emulator.connection_json()}'", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("MinerU emulator stopped.", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mineru-emulator`` and ``python -m mineru_emulator``."""
    options, command = _split_command(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(options)
    if command is not None and not command:
        print("mineru-emulator: --exec needs a command to run", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s mineru-emulator %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    port = args.port if args.port is not None else (0 if command is not None else DEFAULT_PORT)
    try:
        emulator = make_emulator(args, port=port).start()
    except OSError as exc:
        print(f"mineru-emulator: cannot listen on {args.host}:{port}: {exc}", file=sys.stderr)
        return 1
    try:
        return _run_command(emulator, command) if command is not None else _serve(emulator)
    finally:
        emulator.stop()


if __name__ == "__main__":
    sys.exit(main())
