"""
The cloud API's endpoint handlers: each turns a routed, parsed :class:`Request` into an answer
(a ``{"code", "msg", "trace_id", "data"}`` envelope, an OSS-style XML error, a file).

:class:`CloudResponses` is also the flavor's :class:`~mineru_emulator.http.Answers`
(method not allowed, body too large, internal error, faults).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from mineru_emulator.cloud import contract, documents
from mineru_emulator.cloud.account import RATED_ENDPOINTS
from mineru_emulator.cloud.contract import ApiError
from mineru_emulator.faults import Fault
from mineru_emulator.http import Handler, Request, Route, answer_transport_fault

if TYPE_CHECKING:
    from mineru_emulator.cloud.state import CloudState


class EmulatorSettings(Protocol):
    """What the handlers read of the emulator they serve (the facade, :class:`~.server.MinerUEmulator`)."""

    token: str
    expired_tokens: frozenset[str]
    auth_error_style: str
    root_url: str
    max_batch_files: int
    upload_url_ttl: float
    member_prefix: str
    images_per_page: int
    _public_host: str
    _secret: bytes

    def _dir(self, sub: str) -> str: ...


_T = TypeVar("_T")


def trace_id() -> str:
    return uuid.uuid4().hex


def send_envelope(
    request: Request,
    code: str | int,
    msg: str | dict[str, Any] | None = None,
    http_status: int = 200,
    *,
    as_string: bool = False,
) -> None:
    """An error envelope: ``code`` as the service sends it (or as a string), the table message by default."""
    value: str | int = str(code) if as_string else contract.code_value(code)
    payload = {
        "code": value,
        "msg": msg if msg is not None else contract.error_message(code),
        "trace_id": trace_id(),
        "data": None,
    }
    request.send_json(payload, http_status)


def send_ok(request: Request, data: Any) -> None:
    request.send_json({"code": 0, "msg": "ok", "trace_id": trace_id(), "data": data})


def sample(request: Request) -> None:
    """``GET /samples`` (the names) and ``GET /samples/<name>`` (a bundled sample document)."""
    from mineru_emulator._samples import sample_document, sample_names

    name = request.arg or ""
    if request.method not in ("GET", "HEAD"):
        request.send_text(405, "method not allowed")
        return
    if not name:
        request.send_json({"samples": sample_names()})
        return
    data = sample_document(name)
    if data is None:
        request.send_text(404, f"no sample document {name!r}")
        return
    ctype = "application/pdf" if name.endswith(".pdf") else "image/png"
    # a validator, as web servers give one: the provider's ledger tells an unchanged URL by it
    request.send(200, data, ctype, {"ETag": '"' + hashlib.md5(data).hexdigest() + '"'})


def _known(table: dict[str, _T], key: str | None) -> _T:
    """The task or batch ``key`` names, or ``-60012`` (task not found)."""
    found = table.get(key or "")
    if found is None:
        raise ApiError(-60012)
    return found


class CloudResponses:
    """
    The handlers of one emulator.

    :param state: its tasks and batches.
    :param emulator: its settings (token, limits, styles) and addresses.
    """

    def __init__(self, state: CloudState, emulator: EmulatorSettings) -> None:
        self.state = state
        self.emu = emulator

    # -- answers the plumbing asks for -----------------------------------------------------------

    def method_not_allowed(self, request: Request, route: Route) -> None:
        expected = "/".join(sorted(route.methods or ()))
        send_envelope(request, -10002, f"method {request.method} not allowed here, use {expected}", 405)

    def body_too_large(self, request: Request) -> None:
        request.send_json({"code": -500, "msg": "request body too large", "trace_id": trace_id()}, 413)

    def internal_error(self, request: Request, error: Exception) -> None:
        send_envelope(request, -10001, http_status=500)

    def answer_fault(self, request: Request, fault: Fault) -> bool:
        """Answer with ``fault``; False when the normal answer should follow (delay, truncated)."""
        if answer_transport_fault(request, fault):
            return True
        if fault.malformed_json:
            data = b'{"code": 0, "msg": "ok", "trace_id": "' + trace_id().encode() + b'", "data": {"task_id": '
            request.send(fault.http_status or 200, data, fault.content_type or "application/json")
            return True
        if fault.code is not None:
            code = str(fault.code)
            if code in ("A0202", "A0211") and fault.http_status == 401:
                self._send_auth_error(request, code, style="http401", msg=fault.msg)
            else:
                send_envelope(request, code, fault.msg, fault.http_status or 200, as_string=fault.code_as_string)
            return True
        if fault.http_status is not None:
            if request.endpoint in ("upload", "download"):
                slow_down = "Please reduce your request rate."
                self._send_oss_error(request, fault.http_status, "ServiceUnavailable", slow_down)
            else:
                send_envelope(request, -10001, fault.msg, fault.http_status, as_string=fault.code_as_string)
            return True
        return False

    # -- auth and envelopes ----------------------------------------------------------------------

    def api(self, handler: Callable[[Request], None]) -> Handler:
        """
        ``handler`` behind the bearer-token check and the account's rate of its kind (submit or
        query, :data:`~.account.RATED_ENDPOINTS`), with :class:`ApiError` answered as an envelope.
        """

        def answer(request: Request) -> None:
            if not self._authorized(request) or self._rate_limited(request):
                return
            try:
                handler(request)
            except ApiError as exc:
                send_envelope(request, exc.code, exc.message, exc.http_status)

        return answer

    def _rate_limited(self, request: Request) -> bool:
        """Answer HTTP 429 with ``Retry-After`` when the request's kind has no free slot this minute."""
        kind = next((k for k, names in RATED_ENDPOINTS.items() if request.endpoint in names), None)
        if kind is None:
            return False
        account = self.state.account
        with self.state.lock:
            retry_after = account.admit(kind)
            limit = account.limits.submit_rpm if kind == "submit" else account.limits.query_rpm
        if retry_after is None:
            return False
        payload = {
            "code": -10001,
            "msg": f"Too many requests: at most {limit} {kind} requests a minute, retry in {retry_after} s",
            "trace_id": trace_id(),
            "data": None,
        }
        request.send_json(payload, 429, {"Retry-After": str(retry_after)})
        return True

    def _send_auth_error(
        self, request: Request, code: str, *, style: str | None = None, msg: str | dict[str, Any] | None = None
    ) -> None:
        message = msg if msg is not None else contract.error_message(code)
        if (style or self.emu.auth_error_style) == "http401":
            payload = {"msgCode": code, "msg": message, "success": False, "data": None, "trace_id": trace_id()}
            request.send_json(payload, 401)
        else:
            send_envelope(request, code, message)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization")
        if header is None:
            request.send_text(401, "login required")
            return False
        scheme, _, value = header.strip().partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
        if token and token in self.emu.expired_tokens:
            self._send_auth_error(request, "A0211")
            return False
        if not token or not hmac.compare_digest(token.encode(), self.emu.token.encode()):
            self._send_auth_error(request, "A0202")
            return False
        return True

    def _send_oss_error(self, request: Request, status: int, code: str, message: str, **extra: str) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        items = "".join(f"\n  <{key}>{value}</{key}>" for key, value in extra.items())
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{code}</Code>\n  <Message>{message}</Message>\n  <RequestId>{request_id}</RequestId>\n"
            f"  <HostId>{self.emu._public_host}</HostId>{items}\n</Error>\n"
        )
        request.send(status, xml.encode("utf-8"), "application/xml", {"x-oss-request-id": request_id})

    def _root(self, request: Request) -> str:
        return request.root(self.emu.root_url)

    # -- the API ---------------------------------------------------------------------------------

    def other(self, request: Request) -> None:
        """A path that is no endpoint: 404 once authorized."""
        if self._authorized(request):
            path = urlsplit(request.h.path).path
            send_envelope(request, -10002, f"no such endpoint: {request.method} {path}", 404)

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        ctype = (request.headers.get("Content-Type") or "").lower()
        if "json" not in ctype:
            raise ApiError(-500, "Content-Type must be application/json")
        if not isinstance(request.json, dict):
            raise ApiError(-500, "the body must be a JSON object")
        return request.json

    def _batch_request(self, request: Request, key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        obj = self._json_object(request)
        options = contract.check_options(obj)
        files = contract.check_batch_files(obj, key, self.emu.max_batch_files)
        for item in files:
            name = item[key] if key == "name" else contract.url_file_name(item[key])
            item["file_name"] = name
            item["ext"] = contract.check_extension(name, options["model_version"])
        return options, files

    def submit_task(self, request: Request) -> None:
        obj = self._json_object(request)
        url = contract.check_url(obj.get("url"))
        options = contract.check_options(obj)
        name = contract.url_file_name(url)
        ext = contract.check_extension(name, options["model_version"])
        task = self.state.submit_task(file_name=name, ext=ext, url=url, options=options)
        send_ok(request, {"task_id": task.task_id})

    def file_urls(self, request: Request) -> None:
        options, files = self._batch_request(request, "name")
        root = self._root(request)
        expires = int(time.time() + self.emu.upload_url_ttl)
        batch_id, tasks = self.state.submit_batch(options, files, upload=True)
        urls: list[str] = []
        for task in tasks:
            key = task.upload_key or ""
            signature = quote(self._sign(batch_id, key, expires), safe="")
            urls.append(
                f"{root}/api-upload/{batch_id}/{key}?Expires={expires}&OSSAccessKeyId=EMULATOR&Signature={signature}"
            )
        send_ok(request, {"batch_id": batch_id, "file_urls": urls})

    def submit_batch(self, request: Request) -> None:
        options, files = self._batch_request(request, "url")
        batch_id, _ = self.state.submit_batch(options, files, upload=False)
        send_ok(request, {"batch_id": batch_id})

    def get_task(self, request: Request) -> None:
        state = self.state
        with state.lock:
            task = _known(state.tasks, request.arg)
            state.advance_for_request([task])
            view = state.task_view(task, root=self._root(request))
        send_ok(request, view)

    def get_batch(self, request: Request) -> None:
        state = self.state
        with state.lock:
            batch = _known(state.batches, request.arg)
            tasks = [state.tasks[task_id] for task_id in batch.task_ids]
            state.advance_for_request(tasks)
            root = self._root(request)
            items = [state.task_view(task, batch=True, root=root) for task in tasks]
        send_ok(request, {"batch_id": batch.batch_id, "extract_result": items})

    # -- uploads ---------------------------------------------------------------------------------

    def _sign(self, batch_id: str, key: str, expires: int) -> str:
        """An OSS V1-style signature of a PUT with no Content-Type."""
        string_to_sign = f"PUT\n\n\n{expires}\n/mineru/api-upload/{batch_id}/{key}"
        digest = hmac.new(self.emu._secret, string_to_sign.encode(), hashlib.sha1).digest()
        return base64.b64encode(digest).decode()

    def upload(self, request: Request) -> None:
        """``PUT /api-upload/<batch>/<key>?Expires&OSSAccessKeyId&Signature``: a presigned-style upload."""
        h = request.h
        if request.method != "PUT":
            self._send_oss_error(request, 405, "MethodNotAllowed", "The specified method is not allowed.")
            return
        batch_id, _, key = (request.arg or "").partition("/")
        query = parse_qs(urlsplit(h.path).query)
        expires_text = (query.get("Expires") or [""])[0]
        signature = (query.get("Signature") or [""])[0]
        if not expires_text.isdigit() or not signature or "OSSAccessKeyId" not in query:
            self._send_oss_error(request, 403, "AccessDenied", "Anonymous access is forbidden for this operation.")
            return
        expires = int(expires_text)
        if time.time() > expires:
            server_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            expired_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(expires))
            self._send_oss_error(
                request, 403, "AccessDenied", "Request has expired.", Expires=expired_at, ServerTime=server_time
            )
            return
        content_type = (h.headers.get("Content-Type") or "").strip()
        expected = self._sign(batch_id, key, expires)
        if content_type or not hmac.compare_digest(signature.encode(), expected.encode()):
            self._send_oss_error(
                request,
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                OSSAccessKeyId="EMULATOR",
            )
            return
        if "Content-Length" not in h.headers and "chunked" not in h.headers.get("Transfer-Encoding", "").lower():
            h.close_connection = True
            request.body_read = True
            self._send_oss_error(
                request, 411, "MissingContentLength", "You must provide the Content-Length HTTP header."
            )
            return
        state = self.state
        with state.lock:
            task = state.tasks.get(state.uploads.get((batch_id, key), ""))
            generation = state.generation
            path: str | None = None
            if task is not None and not task.upload_claimed:
                task.upload_claimed = True  # a second PUT to the same URL is accepted and ignored
                path = state.doc_path(task)
        if task is None:
            self._send_oss_error(request, 404, "NoSuchUpload", "The upload URL is unknown (emulator was reset?).")
            return
        if path is None:
            request.send(200, b"", None, {"ETag": '"' + "0" * 32 + '"'})
            return
        size, too_big, md5 = self._receive(request, path)
        info = documents.inspect_for(state, task, path, size, too_big)
        state.document_ready(task.task_id, generation, info, queue=True)
        request.send(200, b"", None, {"ETag": f'"{md5.upper()}"', "x-oss-request-id": uuid.uuid4().hex[:24]})

    def _receive(self, request: Request, path: str) -> tuple[int, bool, str]:
        """Stream the PUT body to ``path``; stop writing (but keep reading) past the size limit."""
        size = 0
        too_big = False
        limit = self.state.limits.max_file_bytes
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "wb") as out:
            for chunk in request.iter_body():
                size += len(chunk)
                if size > limit:
                    too_big = True
                    continue
                digest.update(chunk)
                out.write(chunk)
        request.body_read = True
        request.body_size = size
        return size, too_big, digest.hexdigest()

    # -- downloads -------------------------------------------------------------------------------

    def download(self, request: Request) -> None:
        """``GET``/``HEAD /cdn/pdf/<id>.zip``: a done task's result zip (built at first download)."""
        if request.method not in ("GET", "HEAD"):
            self._send_oss_error(request, 405, "MethodNotAllowed", "The specified method is not allowed.")
            return
        state = self.state
        with state.lock:
            task = state.tasks.get(state.zips.get(request.arg or "", ""))
            if task is not None:
                state.advance_for_request([task])
            ready = task is not None and task.state == "done"
        if not ready or task is None:
            self._send_oss_error(request, 404, "NoSuchKey", "The specified key does not exist.")
            return
        path = documents.ensure_zip(task, self.emu._dir("zips"), self.emu.member_prefix, self.emu.images_per_page)
        request.send_file(path, "application/zip")
