"""Helpers for the emulator tests: a tiny MinerU client and a callback receiver (real sockets)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from mineru_emulator import MinerUEmulator, Timings
from mineru_emulator._samples import sample_document
from mineru_emulator.server import DEFAULT_TOKEN

#: The token the ``mineru_emulator`` fixture accepts.
TOKEN = DEFAULT_TOKEN


class Api:
    """A tiny MinerU client for tests: a session with the bearer token and the base URL."""

    def __init__(self, emu: MinerUEmulator, token: str | None = TOKEN) -> None:
        self.emu = emu
        self.base = emu.base_url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        if body is not None:
            kwargs["json"] = body
        return self.session.post(self.base + path, timeout=10, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=10, **kwargs)

    def ok(self, response: requests.Response) -> dict[str, Any]:
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["code"] == 0, payload
        assert payload["msg"] == "ok"
        assert len(payload["trace_id"]) == 32
        return payload["data"]

    def submit(self, url: str, **options: Any) -> str:
        return self.ok(self.post("/extract/task", {"url": url, **options}))["task_id"]

    def task(self, task_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/extract/task/{task_id}"))

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/extract-results/batch/{batch_id}"))

    def wait_task(self, task_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            data = self.task(task_id)
            if data["state"] in ("done", "failed") or time.monotonic() > deadline:
                return data
            time.sleep(0.01)

    def wait_batch(self, batch_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            items = self.batch(batch_id)["extract_result"]
            if all(i["state"] in ("done", "failed") for i in items) or time.monotonic() > deadline:
                return items
            time.sleep(0.01)

    def upload_batch(self, files: dict[str, bytes], **options: Any) -> str:
        body = {"files": [{"name": name} for name in files], **options}
        data = self.ok(self.post("/file-urls/batch", body))
        assert len(data["file_urls"]) == len(files)
        for url, content in zip(data["file_urls"], files.values(), strict=True):
            response = requests.put(url, data=content, timeout=10)
            assert response.status_code == 200, response.text
        return data["batch_id"]

    def download_zip(self, url: str) -> zipfile.ZipFile:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Length"] == str(len(response.content))
        return zipfile.ZipFile(io.BytesIO(response.content))


def sample(name: str) -> bytes:
    data = sample_document(name)
    assert data is not None
    return data


FAST = Timings.fast()


class Receiver:
    """A tiny HTTP server recording POSTs; answers with the scripted statuses, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[dict[str, Any]] = []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {"body": json.loads(body), "content_type": self.headers.get("Content-Type"), "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.event.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def wait(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
