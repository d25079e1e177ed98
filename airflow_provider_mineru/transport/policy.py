"""
The transport's rules, without I/O: what a request is, when it is sent again, what a failure says.

Both faces of the transport (:mod:`~airflow_provider_mineru.transport.sync`, ``requests``, and
:mod:`~airflow_provider_mineru.transport.aio`, ``aiohttp``) send; every decision about what they
sent is made here, once:

- :class:`Request`: one call as a client describes it (``paid`` marks a submit MinerU bills);
- :class:`Attempts`: the retry loop's decisions (backoff and ``Retry-After`` from
  :class:`~airflow_provider_mineru.utils.retries.RetryPolicy`), the lost-answer rule (a paid submit
  whose answer was lost after it was sent raises :class:`MinerUAmbiguousSubmitError`, never
  re-sent), and the last error naming the connection, its base URL and what went wrong in the
  words of the connection Test;
- :func:`transport_error`: a ``requests`` or ``aiohttp`` exception as a typed, retryable error;
- :func:`unreachable`: the one sentence for a request that got no HTTP answer (also the Test's);
- :func:`check_file_response`: an object store's or CDN's answer to an upload or a download;
- :class:`Pacing`: what both faces ask before each API call and after each failed one (the
  account's shared rate limiters, :mod:`airflow_provider_mineru.account.pacing`); :data:`UNPACED`
  when nothing is shared.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from airflow_provider_mineru.exceptions import (
    MinerUAmbiguousSubmitError,
    MinerUConnectionError,
    MinerUError,
    MinerUInvalidRequestError,
    MinerUResultError,
    MinerUTransientError,
    MinerUUploadURLExpiredError,
)
from airflow_provider_mineru.utils.bounded_http import body_excerpt, strip_urls
from airflow_provider_mineru.utils.retries import RetryPolicy, answer_lost, parse_retry_after

if TYPE_CHECKING:
    from airflow_provider_mineru.inputs.sources import SourceFile


class Answer(NamedTuple):
    """One HTTP answer, its body read bounded (see :mod:`airflow_provider_mineru.utils.bounded_http`)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Request:
    """
    One API call as a client describes it; the transport adds the connection's headers and token.

    :param method: the HTTP method.
    :param url: the whole URL (the connection's base URL joined with the endpoint path).
    :param what: how messages name the call (``"GET extract/task/…"``).
    :param json: a JSON body.
    :param params: query parameters (repeated keys allowed).
    :param multipart: files streamed as a multipart ``files`` form (never read whole).
    :param paid: MinerU bills this submit: once its answer may be lost after sending, it is never
        sent again (:class:`MinerUAmbiguousSubmitError`).
    """

    method: str
    url: str
    what: str
    json: Mapping[str, Any] | None = None
    params: Sequence[tuple[str, str]] = ()
    multipart: Sequence[SourceFile] = field(default=())
    paid: bool = False


@dataclass(frozen=True)
class Origin:
    """Which connection a request belongs to, as error messages name it (never the token)."""

    conn_id: str
    base_url: str
    timeout: float

    @property
    def where(self) -> str:
        """``host:port`` of the base URL, as a person names the server."""
        return where(self.base_url)

    def describe(self, sentence: str) -> str:
        return f"{sentence} (connection {self.conn_id!r}, base URL {self.base_url})"


def where(base_url: str) -> str:
    """``host:port`` of a base URL (no credentials)."""
    parts = urlsplit(base_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"


class Pacing(Protocol):
    """
    What the transport's two faces do around each API call: the same calls at the same points.

    ``before`` runs before every attempt (a deployment-wide token for the call's kind);
    ``retrying`` after a failure that will be retried (HTTP retries counted, a 429 slows the
    shared limiter down). Uploads and downloads to presigned URLs and CDNs are not paced.
    """

    def before(self, request: Request) -> None:
        """Wait (blocking) until ``request`` may be sent."""
        ...

    async def abefore(self, request: Request) -> None:
        """Wait in the event loop until ``request`` may be sent."""
        ...

    def retrying(self, request: Request, error: MinerUError) -> None:
        """``request`` failed with ``error`` and will be sent again."""
        ...

    async def aretrying(self, request: Request, error: MinerUError) -> None:
        """:meth:`retrying` from an event loop."""
        ...


class _Unpaced:
    """No pacing (a connection without an account, tests of the transport alone)."""

    def before(self, request: Request) -> None:
        return None

    async def abefore(self, request: Request) -> None:
        return None

    def retrying(self, request: Request, error: MinerUError) -> None:
        return None

    async def aretrying(self, request: Request, error: MinerUError) -> None:
        return None


#: The pacing of a transport made without one.
UNPACED: Pacing = _Unpaced()


# -------------------------------------------------------------------------------------------------
# A request that got no HTTP answer

#: Transport errors that happen before a request is sent: retrying them cannot duplicate anything.
_NOT_SENT_ERRORS = (
    "ConnectTimeout",
    "ConnectionTimeoutError",
    "ClientConnectorError",
    "ConnectionRefused",
    "NewConnectionError",
    "NameResolutionError",
    "Failed to resolve",
    "Name or service not known",
    "nodename nor servname",
)


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes (``__cause__``, or an exception held as the first argument)."""
    found = [exc]
    for _ in range(10):
        cause = found[-1]
        held = getattr(cause, "os_error", None)  # aiohttp's ClientConnectorError holds the OSError apart
        inner = cause.__cause__ or (cause.args[0] if cause.args and isinstance(cause.args[0], BaseException) else None)
        inner = inner or (held if isinstance(held, BaseException) else None)
        if inner is None or inner in found:
            break
        found.append(inner)
    return found


def reason(exc: BaseException) -> str:
    """The innermost cause's words, without URLs or object reprs."""
    cause = _chain(exc)[-1]
    text = str(cause.args[-1] if cause.args else cause)
    text = re.sub(r"<[^>]*>:?\s*", "", text)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text).strip(" :,")
    return text[:160] or type(cause).__name__


def unreachable(exc: BaseException, where: str, timeout: float) -> str:
    """
    One sentence for a request that got no HTTP answer (``requests`` or ``aiohttp`` exceptions):
    what the connection Test says, and what a task raises when its retries run out.
    """
    names = {type(e).__name__ for e in _chain(exc)}
    text = " ".join(str(e) for e in _chain(exc)).lower()
    if names & {"ProxyError", "ClientProxyConnectionError", "ClientHttpProxyError"}:
        return f"cannot reach {where} through the proxy: {reason(exc)}"
    if names & {"SSLError", "ClientSSLError", "ClientConnectorCertificateError", "ClientConnectorSSLError"}:
        return f"cannot reach {where}: the TLS handshake failed ({reason(exc)})"
    if names & {"ConnectTimeout", "ConnectionTimeoutError"}:
        return f"cannot reach {where}: no answer to the connection within {timeout:.0f} s"
    if names & {"ReadTimeout", "SocketTimeoutError", "ServerTimeoutError", "TimeoutError"}:
        return f"{where} accepted the connection but sent no answer within {timeout:.0f} s"
    if "refused" in text or "ConnectionRefusedError" in names or "connect call failed" in text:
        return f"cannot reach {where}: connection refused"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return f"cannot reach {where}: the host name does not resolve"
    if "reset" in text or "aborted" in text or "remote end closed" in text or "disconnected" in text:
        return f"{where} closed the connection without an answer"
    return f"cannot reach {where}: {reason(exc)}"


def transport_error(exc: BaseException, what: str, origin: Origin) -> MinerUConnectionError:
    """
    A ``requests`` or ``aiohttp`` exception as a retryable :class:`MinerUConnectionError`.

    The message is the request, the Test's sentence, and the exception's own words (a person
    reading the log sees both). Unless the connection itself could not be made, the request may
    have reached MinerU before the answer was lost (a reset, a cut-short body, a read time-out):
    the error is marked ``ambiguous``.
    """
    name = type(exc).__name__
    text = strip_urls(str(exc))
    sentence = unreachable(exc, origin.where, origin.timeout)
    # aiohttp's own words are short ("Cannot connect to host …"); urllib3's are pool reprs: keep their cause.
    detail = text[:200] if type(exc).__module__.startswith("aiohttp") and text else reason(exc)
    error = MinerUConnectionError(f"{strip_urls(what)}: {sentence} ({name}: {detail})")
    error.ambiguous = not any(marker in name or marker in text for marker in _NOT_SENT_ERRORS)  # type: ignore[attr-defined]
    error.sentence = sentence  # type: ignore[attr-defined]
    return error


def explain(error: MinerUError, origin: Origin) -> MinerUError:
    """Give a whole-request deadline error the Test's sentence (the async face's time-out has it already)."""
    seconds = getattr(error, "deadline", None)
    if seconds is not None and getattr(error, "sentence", None) is None:
        error.sentence = f"{origin.where} accepted the connection but sent no answer within {seconds:.0f} s"  # type: ignore[attr-defined]
    return error


# -------------------------------------------------------------------------------------------------
# Retries


def _submitted_names(body: Mapping[str, Any] | None) -> list[str]:
    """Per document of a submit body, its ``data_id``, else the file name of its URL."""
    if not body:
        return []
    entries = body.get("files") if isinstance(body.get("files"), list) else [body]
    names = []
    for entry in entries or []:
        if not isinstance(entry, Mapping):
            continue
        source = entry.get("source")
        url = str(
            entry.get("url") or entry.get("name") or (source.get("url") if isinstance(source, Mapping) else "") or ""
        )
        names.append(str(entry.get("data_id") or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or url))
    return names


def _data_ids(body: Mapping[str, Any] | None) -> str:
    if not body:
        return ""
    if body.get("data_id"):
        return str(body["data_id"])
    files = body.get("files")
    return ", ".join(str(f["data_id"]) for f in files or [] if isinstance(f, Mapping) and f.get("data_id"))


def lost_submit_error(request: Request, error: MinerUError) -> MinerUAmbiguousSubmitError:
    """The error raised instead of re-sending a paid submit whose answer was lost."""
    names = [n for n in _submitted_names(request.json) if n] or [s.name for s in request.multipart]
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    path = request.what.split(" ", 1)[-1]
    return MinerUAmbiguousSubmitError(
        f"Submit to {path}: the request was sent but its answer was lost ({error.message}). MinerU may "
        f"have accepted it, so it is not sent again; a retry of the Airflow task submits once more, so "
        f"at most one duplicate task may exist for: {shown or '(unnamed)'}",
        documents=names,
        code=error.code,
        trace_id=error.trace_id,
        http_status=error.http_status,
    )


class Attempts:
    """
    The decisions of one request's retry loop, the same for both faces: the face sends, and after
    each failure asks :meth:`after` how long to wait (or gets the error to raise).

    :param request: what is sent (``paid`` submits are never re-sent once their answer is lost).
    :param policy: the connection's backoff and ``Retry-After`` caps.
    :param origin: the connection, named in the last error of a request that got no answer.
    :param log: where retries are announced (the hook's logger).
    """

    def __init__(self, request: Request, policy: RetryPolicy, origin: Origin, log: logging.Logger) -> None:
        self.request = request
        self.policy = policy
        self.origin = origin
        self.log = log
        self.tries = 0

    def after(self, error: MinerUError) -> float:
        """Seconds to wait before sending again; raises the error to give up."""
        request = self.request
        if request.method == "POST" and getattr(error, "ambiguous", False):
            self.log.warning(
                "The submit may have reached MinerU before the time-out; a retry can create a duplicate "
                "task (identify it by data_id %s).",
                _data_ids(request.json) or "(none set)",
            )
        if request.paid and answer_lost(error):
            raise lost_submit_error(request, error) from error
        delay = self.policy.delay(self.tries, error)
        if delay is None:
            raise self.final(error)
        self.log.warning(
            "%s failed (attempt %d of %d): %s; retrying in %.1fs",
            request.what,
            self.tries + 1,
            self.policy.max_retries + 1,
            error,
            delay,
        )
        self.tries += 1
        return delay

    def final(self, error: MinerUError) -> MinerUError:
        """
        The error a task raises when it gives up: for a request that got no answer, the Test's
        sentence with the connection id, its base URL and the number of attempts.
        """
        if getattr(error, "endpoint_missing", False):
            return self.missing_endpoint(error)
        sentence = getattr(error, "sentence", None)
        if not isinstance(error, MinerUConnectionError) or sentence is None:
            return error
        attempts = self.tries + 1
        final = MinerUConnectionError(
            self.origin.describe(error.message) + f"; gave up after {attempts} attempt{'s' if attempts > 1 else ''}"
        )
        final.ambiguous = getattr(error, "ambiguous", False)  # type: ignore[attr-defined]
        final.sentence = sentence  # type: ignore[attr-defined]
        final.__cause__ = error
        return final

    def missing_endpoint(self, error: MinerUError) -> MinerUError:
        """A 404 that is not about an id we sent: the connection's path prefix is wrong (the Test's words)."""
        origin = self.origin
        sentence = (
            f"{origin.where} answered {safe_url(self.request.what)} with HTTP 404: {origin.base_url} is not "
            f"the base URL of a MinerU API ({error.message})"
        )
        renamed = type(error)(
            origin.describe(sentence), code=error.code, trace_id=error.trace_id, http_status=error.http_status
        )
        renamed.__cause__ = error
        return renamed


def mark_missing_endpoint(error: MinerUError) -> MinerUError:
    """Mark a 404 that means "no such endpoint" (the client knows which 404s are about an id)."""
    error.endpoint_missing = True  # type: ignore[attr-defined]
    return error


# -------------------------------------------------------------------------------------------------
# Object storage and CDNs


def check_file_response(what: str, answer: Answer) -> None:
    """Raise the right error for a failed upload ``PUT`` or result download (object storage, XML bodies)."""
    status, headers, content = answer
    if status < 300:
        return
    excerpt = body_excerpt(content)
    retry_after = parse_retry_after(headers.get("Retry-After"))
    # Object stores (OSS, S3, CDNs) name the failed request in a header or in the XML body.
    request_id = headers.get("x-oss-request-id") or headers.get("x-amz-request-id") or headers.get("x-request-id")
    if not request_id:
        match = re.search(rb"<RequestId>([^<]{1,128})</RequestId>", content[:65536])
        request_id = match.group(1).decode("ascii", "replace") if match else None
    if status == 429 or status >= 500:
        raise MinerUTransientError(
            f"{what} answered HTTP {status}: {excerpt}",
            http_status=status,
            retry_after=retry_after,
            trace_id=request_id,
        )
    if what == "upload" and status == 403 and "expired" in excerpt.lower():
        raise MinerUUploadURLExpiredError(
            f"the upload URL has expired: {excerpt}", http_status=status, trace_id=request_id
        )
    error_class = MinerUInvalidRequestError if what == "upload" else MinerUResultError
    raise error_class(f"{what} answered HTTP {status}: {excerpt}", http_status=status, trace_id=request_id)


def safe_url(url: str) -> str:
    """A URL without its query string (presigned signatures stay out of logs)."""
    return url.split("?", 1)[0]
