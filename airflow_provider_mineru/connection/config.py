"""How a ``mineru`` Airflow connection becomes a base URL, a token and settings (its form: ``connection_fields``)."""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mineru.connection.form import (
    CONN_FIELDS,
    DEFAULT_API_PATH,
    DEFAULT_TIMEOUT,
    TOKEN_EXPIRY_WARNING_DAYS,
    validate_flavor,
)
from airflow_provider_mineru.exceptions import MinerUConnectionError, MinerURefusedResponseError, MinerUValidationError
from airflow_provider_mineru.inputs.validation import MinerULimits
from airflow_provider_mineru.transport import Request, Transport
from airflow_provider_mineru.transport.policy import reason, where
from airflow_provider_mineru.utils.retries import RetryPolicy


@dataclass(frozen=True)
class MinerUConnectionConfig:
    """
    Everything the hook needs from a ``mineru`` connection, parsed once.

    :param base_url: scheme, host, port and path prefix, without a trailing slash.
    :param token: the API token (never logged: its ``repr`` is hidden).
    """

    base_url: str
    token: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    uid: str | None = None
    limits: MinerULimits = field(default_factory=MinerULimits)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    proxy: str | None = None
    verify: bool | str = True
    headers: dict[str, str] = field(default_factory=dict)
    #: ``"cloud"`` (v4 API) or ``"mineru-api"`` (the open-source server): see :mod:`airflow_provider_mineru.clients`.
    api_flavor: str = "cloud"

    @property
    def auth_headers(self) -> dict[str, str]:
        """The ``headers`` extra plus ``Authorization: Bearer <token>``: the token wins over any
        ``Authorization`` (in any letter case) in ``headers``."""
        extra = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        return {**extra, "Authorization": f"Bearer {self.token}"}

    @classmethod
    def from_connection(
        cls, conn: Any, extra: dict[str, Any] | None = None, *, default_path: str = DEFAULT_API_PATH
    ) -> MinerUConnectionConfig:
        """
        Build the settings from an Airflow ``Connection``.

        :param extra: the connection's extras, when already read (async lookups read them apart).
        :param default_path: the path a base URL without one gets: the flavor's (its client's
            ``default_path``, ``/api/v4`` on the cloud).
        """
        extra = dict(conn.extra_dejson if extra is None else extra)
        validate_extras(extra)
        token = (conn.password or extra.get("token") or "").strip()
        headers = extra.get("headers") or {}
        if not isinstance(headers, dict):
            raise MinerUValidationError("connection extra headers", headers, "must be a JSON object")
        flavor = validate_flavor(extra.get("api_flavor"))
        return cls(
            api_flavor=flavor,
            base_url=base_url_from_connection(conn.host, conn.schema, conn.port, extra, default_path=default_path),
            token=token,
            timeout=float(extra.get("timeout") or DEFAULT_TIMEOUT),  # blank in the form: the default
            uid=(str(extra["uid"]) if extra.get("uid") not in (None, "") else None),
            limits=MinerULimits.from_extra(extra),
            retry=RetryPolicy.from_extra(extra),
            proxy=extra.get("proxy") or None,
            verify=tls_verify(extra),
            headers={str(k): str(v) for k, v in headers.items()},
        )


_KIND_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "true or false", "string": "text"}


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def extra_rule(name: str) -> str:
    """
    The rule of one form field in words (``"must be a whole number from 1 to 200"``), from its schema.

    :param name: a key of :data:`~airflow_provider_mineru.connection.form.CONN_FIELDS`.
    """
    schema = CONN_FIELDS[name]["schema"]
    kind = next(k for k in schema["type"] if k != "null")
    words = f"must be {_KIND_WORDS[kind]}"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        words += f" from {_bound(low)} to {_bound(high)}"
    elif low is not None:
        words += f" of at least {_bound(low)}"
    elif high is not None:
        words += f" of at most {_bound(high)}"
    if schema.get("pattern"):
        words += f" matching {schema['pattern']}"
    return words


def _number(value: Any, kind: str) -> float | None:
    """``value`` as a number of ``kind`` (``"integer"`` or ``"number"``), or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if kind == "integer" and not float(value).is_integer():
        return None
    return value


def validate_extras(extra: dict[str, Any]) -> None:
    """
    Check a connection's extras against the form's schema (type, ``minimum``, ``maximum``, ``pattern``).

    The form enforces the same schema in Airflow 3.2+; this catches connections made elsewhere
    (CLI, environment variables, secrets backends, older forms). Blank values mean the default.
    ``verify`` may also hold a CA-bundle path (the older spelling of ``ca_bundle``).

    :param extra: the connection's extras.
    :raises MinerUValidationError: naming the field, its value and the rule it breaks.
    """
    for name, spec in CONN_FIELDS.items():
        value = extra.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        schema = spec["schema"]
        kind = next(k for k in schema["type"] if k != "null")
        field_name = f"connection extra {name}"
        shown = "***" if schema.get("format") == "password" else value
        if kind in ("integer", "number"):
            number = _number(value, kind)
            low, high = schema.get("minimum"), schema.get("maximum")
            if number is None or (low is not None and number < low) or (high is not None and number > high):
                raise MinerUValidationError(field_name, shown, extra_rule(name))
        elif kind == "boolean":
            if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
                continue
            if name == "verify" and isinstance(value, str):  # a CA-bundle path, the older spelling
                continue
            raise MinerUValidationError(field_name, shown, "must be true or false (a CA bundle goes in ca_bundle)")
        else:
            if not isinstance(value, str):
                raise MinerUValidationError(field_name, shown, extra_rule(name))
            if schema.get("pattern") and not re.search(schema["pattern"], value):
                raise MinerUValidationError(field_name, shown, extra_rule(name))


def tls_verify(extra: dict[str, Any]) -> bool | str:
    """
    What ``requests``' ``verify`` gets: True, False, or the path of a CA bundle.

    ``ca_bundle`` names the bundle; ``verify`` off turns checking off whatever ``ca_bundle`` says;
    a path in ``verify`` itself (the older spelling) still works.
    """
    verify = extra.get("verify", True)
    if verify is None or (isinstance(verify, str) and not verify.strip()):
        verify = True
    if isinstance(verify, str) and verify.strip().lower() in ("true", "false"):
        verify = verify.strip().lower() == "true"
    if verify is False:
        return False
    bundle = str(extra.get("ca_bundle") or "").strip()
    if bundle:
        return bundle
    return verify


def base_url_from_connection(
    host: str | None,
    schema: str | None,
    port: int | None,
    extra: dict[str, Any],
    *,
    default_path: str = DEFAULT_API_PATH,
) -> str:
    """
    The API base URL from a connection's fields.

    - ``host`` may hold the whole base URL (``https://mineru.net/api/v4``,
      ``http://gateway:8000/api/v1``); a URL without a path gets ``/api/v4``.
    - A bare host name gets ``https://`` (or extra ``scheme``), the port, and the path from the
      ``schema`` field (where the URI form ``mineru://:tok@host:8000/api%2Fv1`` puts it) or ``/api/v4``.
    - ``default_path`` replaces ``/api/v4`` (``""`` for a ``mineru-api`` server's root URL).
    """
    host = (host or "").strip()
    if not host:
        raise MinerUValidationError(
            "connection host", host, "must be the MinerU base URL, e.g. https://mineru.net/api/v4"
        )
    schema = (schema or "").strip()
    scheme_hint = str(extra.get("scheme") or "").strip().lower()
    if schema.lower() in ("http", "https"):  # an HTTP-style connection put the scheme in `schema`
        scheme_hint, schema = schema.lower(), ""
    if "://" not in host:
        host = f"{scheme_hint or 'https'}://{host}"
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MinerUValidationError("connection host", host, "must be an http:// or https:// base URL")
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if not path:
        path = "/" + schema.strip("/") if schema else default_path
    return urlunsplit((parts.scheme, netloc, path, "", "")).rstrip("/")


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim (epoch seconds) of a JWT token, or None for tokens that are not JWTs."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return float(claims["exp"]) if isinstance(claims, dict) and "exp" in claims else None
    except (ValueError, KeyError, TypeError, UnicodeError):
        return None


def token_expiry_warning(token: str, now: float | None = None) -> str | None:
    """A sentence to show when the token expires within :data:`TOKEN_EXPIRY_WARNING_DAYS` days."""
    expires = token_expiry(token)
    if expires is None:
        return None
    now = time.time() if now is None else now
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
    if expires <= now:
        return f"The MinerU API token expired on {when}; create a new one and update the connection."
    days = (expires - now) / 86400
    if days <= TOKEN_EXPIRY_WARNING_DAYS:
        return f"The MinerU API token expires on {when} (in {days:.0f} days); renew it before then."
    return None


# -------------------------------------------------------------------------------------------------
# The connection form's Test button

#: Seconds the Test waits to connect, and then for the answer: one attempt, no retries.
TEST_TIMEOUT = 4.0
#: The Test answers within this many seconds whatever the server does (slow DNS included).
TEST_DEADLINE = 9.0
#: MinerU's answer to a task id it does not know: proof that it read and accepted the token.
_NOT_FOUND_CODE = "-60012"
_AUTH_CODES = ("A0202", "A0211")
_log = logging.getLogger(__name__)


def _envelope(body: bytes) -> dict[str, Any] | None:
    """MinerU's JSON envelope (``code`` or ``msgCode``, ``msg``, a trace id or ``data``), else None."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(payload, dict):
        return None
    has_code = "code" in payload or "msgCode" in payload
    has_rest = "msg" in payload and any(k in payload for k in ("trace_id", "traceId", "data"))
    return payload if has_code and has_rest else None


def _classify(config: MinerUConnectionConfig, status: int, body: bytes) -> tuple[bool, str]:
    """Judge one HTTP answer to the probe: only MinerU's envelope proves (or refuses) the token."""
    server, base = where(config.base_url), config.base_url
    payload = _envelope(body)
    if payload is None:
        if status == 404:
            return False, (
                f"No MinerU API at {base}: it answered HTTP 404 without MinerU's JSON. "
                "Check the base URL (e.g. https://mineru.net/api/v4, or your gateway's http://host:port/api/v1)."
            )
        if status in (401, 403):
            return False, (
                f"{server} refused the request with HTTP {status}, but not in MinerU's words: "
                f"a proxy or gateway in front of {base}?"
            )
        if status in (301, 302, 303, 307, 308):
            return False, f"{base} redirects (HTTP {status}); use the URL it redirects to as the base URL."
        return False, f"No MinerU API at {base}: it answered HTTP {status} without MinerU's JSON."
    code = payload.get("code", payload.get("msgCode"))
    code_text = None if code is None else str(int(code) if isinstance(code, float) else code).strip()
    message = payload.get("msg")
    if isinstance(message, dict):
        message = message.get("en") or message.get("zh") or json.dumps(message, ensure_ascii=False)
    message = " ".join(str(message or "").split())[:200]
    if code_text == _NOT_FOUND_CODE or (code_text in ("0", "200") and status < 400):
        warning = token_expiry_warning(config.token)
        text = f"Connected to MinerU at {base}; the token is valid."
        return True, f"{text} {warning}" if warning else text
    if code_text in _AUTH_CODES:
        return False, f"MinerU at {base} refused the token ({code_text}: {message})."
    if status == 404:
        return False, f"MinerU answered at {server}, but {base} is not its API path ({code_text}: {message})."
    return False, f"MinerU at {base} answered {code_text}: {message} (HTTP {status})."


def _probe_once(config: MinerUConnectionConfig, timeout: float) -> tuple[bool, str]:
    """One attempt through the transport (no retries, ``timeout`` for the whole request)."""
    probe = Transport(
        replace(config, timeout=timeout, retry=RetryPolicy(max_retries=0)), conn_id="(connection test)", log=_log
    )
    url = probe.url(f"extract/task/connection-test-{uuid.uuid4()}")
    try:
        answer = probe.send(Request("GET", url, "GET extract/task/connection-test"), lambda answer: answer)
    except MinerUConnectionError as exc:
        return False, str(getattr(exc, "sentence", None) or exc.message)
    except MinerURefusedResponseError as exc:
        status = exc.http_status
        if status is not None and 300 <= status < 400:
            target = getattr(exc, "redirect_to", "another URL")
            return False, (
                f"{config.base_url} redirects (HTTP {status}) to {target}; nothing was sent there. "
                "Use the URL it redirects to as the base URL."
            )
        return False, f"No MinerU API at {config.base_url}: {exc.message}."
    finally:
        probe.sync.close()
    return _classify(config, answer.status, answer.body)


def check_connection(
    config: MinerUConnectionConfig, *, timeout: float = TEST_TIMEOUT, deadline: float = TEST_DEADLINE
) -> tuple[bool, str]:
    """
    The connection form's Test: one request, a short timeout, and one sentence a person understands.

    It asks for a made-up task id, which costs no quota. Only MinerU's own JSON envelope counts:
    ``-60012`` (task not found) proves the token, ``A0202``/``A0211`` refuse it, and a plain 404
    (a web server, a wrong path prefix) means there is no MinerU API at that URL. The answer comes
    within ``deadline`` seconds whatever the server does (refuses, accepts and stays silent, a DNS
    lookup that hangs). The connection's retries are not used: a Test makes one attempt.

    :param config: the parsed connection.
    :param timeout: seconds to connect, and then to wait for the answer.
    :param deadline: seconds after which the Test gives up, whatever it is waiting for.
    """
    if not config.token:
        return False, "The connection has no API token: put it in the API token (password) field."
    outcome: list[tuple[bool, str]] = []

    def run() -> None:
        try:
            outcome.append(_probe_once(config, min(timeout, config.timeout)))
        except Exception as exc:  # never let the form see a traceback
            outcome.append((False, f"cannot test {where(config.base_url)}: {type(exc).__name__}: {reason(exc)}"))

    worker = threading.Thread(target=run, name="mineru-connection-test", daemon=True)
    worker.start()
    worker.join(deadline)
    if outcome:
        return outcome[0]
    return False, f"no answer from {where(config.base_url)} within {deadline:.0f} s"
