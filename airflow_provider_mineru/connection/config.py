"""How a ``mineru`` Airflow connection becomes a base URL, a token and settings (its form: ``connection_fields``)."""

from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mineru.connection.form import (
    CONN_FIELDS,
    DEFAULT_API_PATH,
    DEFAULT_DOWNLOAD_CONCURRENCY,
    DEFAULT_MAX_BATCH_FILES,
    DEFAULT_MAX_FILE_MB,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_RESULT_MB,
    DEFAULT_TIMEOUT,
    TOKEN_EXPIRY_WARNING_DAYS,
    validate_flavor,
)
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.utils.retries import RetryPolicy

MIB = 1024 * 1024


@dataclass(frozen=True)
class MinerULimits:
    """
    Limits MinerU enforces; defaults follow the API reference, each can be overridden per connection.

    :param max_file_bytes: largest file MinerU accepts (200 MB).
    :param max_pages: most pages in one document (600).
    :param max_batch_files: most files in one batch call (200).
    :param max_result_bytes: largest result zip downloaded (1024 MB); a download stops at this many
        bytes, its partial file is removed and :class:`~airflow_provider_mineru.exceptions.MinerUResultError`
        is raised. Not a MinerU limit: a bound against a broken or hostile server.
    :param download_concurrency: result zips downloaded at once by one task (16).
    """

    max_file_bytes: int = DEFAULT_MAX_FILE_MB * MIB
    max_pages: int = DEFAULT_MAX_PAGES
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES
    max_result_bytes: int = DEFAULT_MAX_RESULT_MB * MIB
    download_concurrency: int = DEFAULT_DOWNLOAD_CONCURRENCY

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> MinerULimits:
        """
        Read ``max_file_mb``, ``max_pages``, ``max_batch_files``, ``max_result_mb`` and
        ``download_concurrency`` from connection extras.
        """
        defaults = cls()
        max_file_mb = extra.get("max_file_mb")
        return cls(
            max_file_bytes=int(float(max_file_mb) * MIB) if max_file_mb not in (None, "") else defaults.max_file_bytes,
            max_pages=_positive_int(extra, "max_pages", defaults.max_pages),
            max_batch_files=_positive_int(extra, "max_batch_files", defaults.max_batch_files),
            max_result_bytes=_positive_mb(extra, "max_result_mb", defaults.max_result_bytes),
            download_concurrency=_positive_int(extra, "download_concurrency", defaults.download_concurrency),
        )


def _positive_mb(extra: dict[str, Any], key: str, default: int) -> int:
    """A size extra given in MB (decimals allowed), as bytes."""
    value = extra.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MinerUValidationError(f"connection extra {key}", value, "must be a positive number of MB") from None
    if not number > 0 or number == float("inf"):
        raise MinerUValidationError(f"connection extra {key}", value, "must be a positive number of MB")
    return max(1, int(number * MIB))


def _positive_int(extra: dict[str, Any], key: str, default: int) -> int:
    value = extra.get(key)
    if value in (None, ""):
        return default
    number = int(value)
    if number <= 0:
        raise MinerUValidationError(f"connection extra {key}", value, "must be a positive whole number")
    return number


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


def extra_rule(name: str, fields: Mapping[str, Mapping[str, Any]] = CONN_FIELDS) -> str:
    """
    The rule of one form field in words (``"must be a whole number from 1 to 200"``), from its schema.

    :param name: a key of ``fields``.
    :param fields: the form fields, in the shape of :data:`~airflow_provider_mineru.connection.form.CONN_FIELDS`.
    """
    schema = fields[name]["schema"]
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


def validate_extras(extra: Mapping[str, Any], fields: Mapping[str, Mapping[str, Any]] = CONN_FIELDS) -> None:
    """
    Check a connection's extras against the form's schema (type, ``minimum``, ``maximum``, ``pattern``).

    The form enforces the same schema in Airflow 3.2+; this catches connections made elsewhere
    (CLI, environment variables, secrets backends, older forms). Blank values mean the default.
    ``verify`` may also hold a CA-bundle path (the older spelling of ``ca_bundle``).

    :param extra: the connection's extras.
    :param fields: the form fields whose schemas apply (default: the connection form's).
    :raises MinerUValidationError: naming the field, its value and the rule it breaks.
    """
    for name, spec in fields.items():
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
                raise MinerUValidationError(field_name, shown, extra_rule(name, fields))
        elif kind == "boolean":
            if isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in ("true", "false")):
                continue
            if name == "verify" and isinstance(value, str):  # a CA-bundle path, the older spelling
                continue
            raise MinerUValidationError(field_name, shown, "must be true or false (a CA bundle goes in ca_bundle)")
        else:
            if not isinstance(value, str):
                raise MinerUValidationError(field_name, shown, extra_rule(name, fields))
            if schema.get("pattern") and not re.search(schema["pattern"], value):
                raise MinerUValidationError(field_name, shown, extra_rule(name, fields))


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
