"""How a ``mineru`` Airflow connection becomes a base URL, a token and settings (its form: ``connection_fields``)."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_mineru.connection_fields import DEFAULT_API_PATH, DEFAULT_TIMEOUT, TOKEN_EXPIRY_WARNING_DAYS
from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.protocol import RetryPolicy
from airflow_provider_mineru.validation import MinerULimits


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
    def from_connection(cls, conn: Any, extra: dict[str, Any] | None = None) -> MinerUConnectionConfig:
        """
        Build the settings from an Airflow ``Connection``.

        :param extra: the connection's extras, when already read (async lookups read them apart).
        """
        extra = dict(conn.extra_dejson if extra is None else extra)
        token = (conn.password or extra.get("token") or "").strip()
        verify = extra.get("verify", True)
        if isinstance(verify, str) and verify.lower() in ("true", "false"):
            verify = verify.lower() == "true"
        headers = extra.get("headers") or {}
        if not isinstance(headers, dict):
            raise MinerUValidationError("connection extra headers", headers, "must be a JSON object")
        from airflow_provider_mineru.clients import API_FLAVOR_MINERU_API, validate_flavor

        flavor = validate_flavor(extra.get("api_flavor"))
        default_path = "" if flavor == API_FLAVOR_MINERU_API else DEFAULT_API_PATH  # we add /v1/... ourselves
        return cls(
            api_flavor=flavor,
            base_url=base_url_from_connection(conn.host, conn.schema, conn.port, extra, default_path=default_path),
            token=token,
            timeout=float(extra.get("timeout") or DEFAULT_TIMEOUT),  # blank in the form: the default
            uid=(str(extra["uid"]) if extra.get("uid") not in (None, "") else None),
            limits=MinerULimits.from_extra(extra),
            retry=RetryPolicy.from_extra(extra),
            proxy=extra.get("proxy") or None,
            verify=verify,
            headers={str(k): str(v) for k, v in headers.items()},
        )


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
