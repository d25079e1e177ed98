"""
Run the MinerU emulator in this process for the benchmarks; print one JSON line with its URLs.

Started by :func:`_common.emulator_process`, so the CPU and memory a benchmark measures are the
client's only. One harness setting differs from ``mineru-emulator``: the listen backlog is raised
from the standard library's 5 to 1024, so a burst of a thousand new connections (the naive
baseline of ``bench_triggers.py``) waits in the kernel's accept queue instead of having SYNs
dropped and retried a second later. That only helps the baseline.

With ``--tls DIR`` it serves HTTPS instead (a throw-away ECDSA P-256 certificate for 127.0.0.1,
written to ``DIR/cert.pem``; the TLS handshake runs in each connection's thread), as the
MinerU cloud does.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from typing import Any


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--pending", type=float, default=0.2)
    parser.add_argument("--per-page", type=float, default=0.05)
    parser.add_argument("--converting", type=float, default=0.1)
    parser.add_argument("--max-file-bytes", type=int, default=200 * 1024 * 1024)
    parser.add_argument("--backlog", type=int, default=1024)
    parser.add_argument("--tls", metavar="DIR", help="serve HTTPS with a certificate written to DIR/cert.pem")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="stop by itself after this long")
    args = parser.parse_args()

    from mineru_emulator import server

    logging.getLogger("mineru_emulator").setLevel(logging.WARNING)
    server._Server.request_queue_size = args.backlog
    cafile = _enable_tls(server._Server, args.tls) if args.tls else None
    emu = server.MinerUEmulator(
        token=args.token,
        timings=server.Timings(pending=args.pending, per_page=args.per_page, converting=args.converting),
        max_file_bytes=args.max_file_bytes,
        fetch_demo_urls=False,
    ).start()
    scheme = "https://" if cafile else "http://"
    urls = {"base_url": emu.base_url, "root_url": emu.root_url}
    print(json.dumps({**{k: v.replace("http://", scheme, 1) for k, v in urls.items()}, "cafile": cafile}), flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    parent, started = os.getppid(), time.monotonic()
    # Stop on SIGTERM, when the benchmark that started us is gone, or after --max-seconds.
    while not stop.wait(0.5):
        if os.getppid() != parent or time.monotonic() - started > args.max_seconds:
            break
    emu.stop()
    return 0


def _enable_tls(server_class: type, directory: str) -> str:
    """Wrap every accepted connection of ``server_class`` in TLS; return the certificate's path."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)

    get_request, finish_request = server_class.get_request, server_class.finish_request

    def tls_get_request(self: Any) -> Any:
        sock, address = get_request(self)
        return context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def tls_finish_request(self: Any, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()  # in the connection's own thread, not the accept loop
        except (OSError, ssl.SSLError):
            return
        finish_request(self, request, client_address)

    server_class.get_request = tls_get_request
    server_class.finish_request = tls_finish_request
    return cert_path


if __name__ == "__main__":
    sys.exit(main())
