"""
The ``mineru`` connection's form and defaults, as plain data.

Imported by ``get_provider_info`` (which Airflow loads while it is still starting, so nothing here
may import Airflow) and by the hook, so the Airflow 3.2+ declarative form and the older form
widgets are built from the same :data:`CONN_FIELDS`.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "mineru"
DEFAULT_CONN_ID = "mineru_default"

#: The MinerU cloud v4 API (``https://mineru.net/api/v4``) and v4-shaped gateways.
API_FLAVOR_CLOUD = "cloud"
#: The open-source ``mineru-api`` server (MinerU 4.0.x, V1 API).
API_FLAVOR_MINERU_API = "mineru-api"
#: The values of the ``api_flavor`` extra; each has its client in :mod:`airflow_provider_mineru.clients`.
API_FLAVORS = (API_FLAVOR_CLOUD, API_FLAVOR_MINERU_API)


def validate_flavor(value: Any, field: str = "connection extra api_flavor") -> str:
    """The flavor named by a connection extra (blank: ``cloud``), or a validation error naming it."""
    # lazy: Airflow imports this module (get_provider_info) while it is still importing exceptions.py
    from airflow_provider_mineru.exceptions import MinerUValidationError

    if value is None or (isinstance(value, str) and not value.strip()):
        return API_FLAVOR_CLOUD
    flavor = str(value).strip().lower()
    if flavor not in API_FLAVORS:
        raise MinerUValidationError(field, value, f"must be one of {list(API_FLAVORS)}")
    return flavor


DEFAULT_API_PATH = "/api/v4"
DEFAULT_TIMEOUT = 30.0
#: Warn when the token (a JWT) expires within this many days.
TOKEN_EXPIRY_WARNING_DAYS = 14

# MinerU's limits (API reference); each can be changed per connection as the service moves them.
DEFAULT_MAX_FILE_MB = 200
DEFAULT_MAX_PAGES = 600
DEFAULT_MAX_BATCH_FILES = 200
# Not MinerU's: bounds of result downloads.
DEFAULT_MAX_RESULT_MB = 1024
DEFAULT_DOWNLOAD_CONCURRENCY = 16

# Retries of transient errors (HTTP 429/5xx, busy-service codes, resets, time-outs).
DEFAULT_MAX_RETRIES = 5
DEFAULT_RETRY_BACKOFF = 1.0

#: The callback secret's rule (MinerU's ``seed``): 1-64 of letters, digits and ``_``.
CALLBACK_SECRET_PATTERN = "^[A-Za-z0-9_]{1,64}$"
#: A proxy URL: http(s) or socks5(h), no spaces.
PROXY_PATTERN = "^(https?|socks5h?)://[^\\s]+$"

#: MinerU's reported limits per account (users report ~300 submits and ~1,000 queries a minute).
DEFAULT_SUBMIT_RPM = 300
DEFAULT_QUERY_RPM = 1000

#: The account extras (budgets, rates, the shared store): :mod:`airflow_provider_mineru.account`.
ACCOUNT_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "daily_page_budget": {
        "label": "Daily page budget",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 100_000_000},
        "description": "Pages this connection may submit per UTC day, across the whole deployment. Empty: unlimited.",
    },
    "daily_file_budget": {
        "label": "Daily file budget",
        "schema": {"type": ["integer", "null"], "minimum": 0, "maximum": 100_000_000},
        "description": "Files this connection may submit per UTC day, across the whole deployment. Empty: unlimited.",
    },
    "submit_rpm": {
        "label": "Submits per minute",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_SUBMIT_RPM, "minimum": 1, "maximum": 100_000},
        "description": "Submit and upload-URL requests per minute for the whole deployment (MinerU: about 300).",
    },
    "query_rpm": {
        "label": "Queries per minute",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_QUERY_RPM, "minimum": 1, "maximum": 100_000},
        "description": "State queries per minute for the whole deployment (MinerU: about 1,000).",
    },
    "account_store": {
        "label": "Account store",
        "schema": {"type": ["string", "null"]},
        "description": "Where budgets and rate limits are counted: s3://[aws_conn_id@]bucket/prefix for a deployment "
        "on several machines, or a local directory. Empty: $AIRFLOW_HOME/mineru-account (this machine only).",
    },
}


#: Connection extras shown in the UI form, in the Airflow 3.2+ ``conn-fields`` shape. The schema's
#: ``minimum``/``maximum``/``pattern`` are enforced by the form and, with the same words, by the hook
#: when it reads a connection (:func:`airflow_provider_mineru.connection.config.validate_extras`).
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "api_flavor": {
        "label": "API flavor",
        "schema": {"type": ["string", "null"], "default": "cloud"},
        "description": "cloud: the MinerU cloud v4 API (or a v4 gateway). mineru-api: the open-source mineru-api "
        "server; Base URL is its root (http://mineru:8000) and API token its --api-key (may be empty).",
    },
    "timeout": {
        "label": "Request timeout (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT, "minimum": 0.1, "maximum": 3600},
        "description": "Seconds to wait for one HTTP answer from MinerU (0.1 to 3600).",
    },
    "uid": {
        "label": "Account UID",
        "schema": {"type": ["string", "null"]},
        "description": "Your MinerU user id (user centre); verifies callback checksums.",
    },
    "callback_secret": {
        "label": "Callback secret",
        "schema": {"type": ["string", "null"], "format": "password", "pattern": CALLBACK_SECRET_PATTERN},
        "description": "Seed MinerU signs callbacks with (1-64 of A-Z a-z 0-9 _); the /mineru/callback "
        "endpoint verifies callbacks with it and the uid.",
    },
    "max_retries": {
        "label": "Retries on transient errors",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_RETRIES, "minimum": 0, "maximum": 20},
        "description": "HTTP 429/5xx, busy-service codes, resets and time-outs are retried this many times (0 to 20).",
    },
    "retry_backoff": {
        "label": "Retry backoff (seconds)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_RETRY_BACKOFF, "minimum": 0, "maximum": 600},
        "description": "Base of the exponential backoff between retries (0 to 600).",
    },
    "max_file_mb": {
        "label": "Max file size (MB)",
        "schema": {
            "type": ["number", "null"],
            "default": DEFAULT_MAX_FILE_MB,
            "minimum": 0.001,
            "maximum": DEFAULT_MAX_FILE_MB,
        },
        "description": "Refuse larger files before uploading (MinerU's limit is 200 MB).",
    },
    "max_pages": {
        "label": "Max pages per document",
        "schema": {
            "type": ["integer", "null"],
            "default": DEFAULT_MAX_PAGES,
            "minimum": 1,
            "maximum": DEFAULT_MAX_PAGES,
        },
        "description": "Refuse longer local PDFs before uploading (MinerU's limit is 600).",
    },
    "max_batch_files": {
        "label": "Max files per batch call",
        "schema": {
            "type": ["integer", "null"],
            "default": DEFAULT_MAX_BATCH_FILES,
            "minimum": 1,
            "maximum": DEFAULT_MAX_BATCH_FILES,
        },
        "description": "Larger lists are split into several MinerU batches (MinerU's limit is 200).",
    },
    "max_result_mb": {
        "label": "Max result zip size (MB)",
        "schema": {"type": ["number", "null"], "default": DEFAULT_MAX_RESULT_MB, "minimum": 1},
        "description": "A result download stops at this size; the partial file is removed and the task fails.",
    },
    "download_concurrency": {
        "label": "Result downloads at once",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_DOWNLOAD_CONCURRENCY, "minimum": 1, "maximum": 64},
        "description": "Result zips one task downloads and extracts at the same time.",
    },
    "proxy": {
        "label": "HTTP(S) proxy URL",
        "schema": {"type": ["string", "null"], "pattern": PROXY_PATTERN},
        "description": "Send API calls, uploads and downloads through this proxy (http://, https:// or socks5://).",
    },
    "verify": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Turn off only for a self-hosted gateway with a self-signed certificate.",
    },
    "ca_bundle": {
        "label": "CA bundle path",
        "schema": {"type": ["string", "null"]},
        "description": "A PEM file of the certificate authorities to trust instead of the system's "
        "(a gateway with a private CA); used while Verify TLS certificates is on.",
    },
    **ACCOUNT_CONN_FIELDS,
}

#: Airflow 2.x / 3.0-3.1 spelling (``get_ui_field_behaviour``); provider info uses hyphenated keys.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["login", "schema", "port"],
    "relabeling": {"host": "Base URL", "password": "API token"},
    "placeholders": {
        "host": "https://mineru.net/api/v4  (or http://gateway:8000/api/v1)",
        "password": "MinerU API token (Bearer)",
        "timeout": str(DEFAULT_TIMEOUT),
        "api_flavor": "cloud or mineru-api",
        "uid": "user id for callback checksums",
        "callback_secret": "seed for callback checksums (kept secret)",
        "max_retries": str(DEFAULT_MAX_RETRIES),
        "max_batch_files": str(DEFAULT_MAX_BATCH_FILES),
        "proxy": "http://proxy.internal:3128",
        "ca_bundle": "/etc/ssl/certs/my-gateway-ca.pem",
        "daily_page_budget": "unlimited",
        "daily_file_budget": "unlimited",
        "submit_rpm": str(DEFAULT_SUBMIT_RPM),
        "query_rpm": str(DEFAULT_QUERY_RPM),
        "account_store": "s3://aws_default@bucket/mineru-account  (or /shared/dir)",
    },
}
