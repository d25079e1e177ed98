"""
What a DAG author writes to receive MinerU's callbacks: the asset to schedule on, the URL, the seed.

The api-server side (the endpoint that verifies callbacks and records the asset events) is the
plugin package :mod:`airflow_provider_mineru.plugins.callbacks`; see ``docs/callbacks.md``. These
helpers import on every Airflow line, so DAG files that use them parse on Airflow 2.11 too.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import Asset

from airflow_provider_mineru.connection.form import DEFAULT_CONN_ID
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

__all__ = [
    "CALLBACK_SECRET_EXTRA",
    "CALLBACK_URL_PREFIX",
    "callback_asset",
    "callback_seed_template",
    "callback_url",
]

#: Where the api-server mounts the callback endpoint: ``<api-server>/mineru/callback/<conn_id>``.
CALLBACK_URL_PREFIX = "/mineru"
#: The connection extra holding the callback secret, i.e. the ``seed`` given to the operators.
#: Its name contains ``secret`` so Airflow masks it everywhere (connection form, logs, rendered
#: templates) like a password.
CALLBACK_SECRET_EXTRA = "callback_secret"


def callback_asset(conn_id: str = DEFAULT_CONN_ID) -> Asset:
    """
    The asset the callback endpoint updates for connection ``conn_id``; schedule DAGs on it.

    ``Asset(uri="mineru://callbacks/<conn_id>", name="mineru_callbacks_<conn_id>")``. (On Airflow
    2.11 a ``Dataset`` with that URI, so DAG files import there too; only Airflow 3 serves callbacks.)
    """
    uri = f"mineru://callbacks/{conn_id}"
    if AIRFLOW_V_3_0_PLUS:
        return Asset(uri=uri, name=f"mineru_callbacks_{conn_id}")
    return Asset(uri)  # Airflow 2.11's Dataset has no name


def callback_url(base_url: str, conn_id: str = DEFAULT_CONN_ID) -> str:
    """The ``callback`` URL to give MinerU: ``<base_url>/mineru/callback/<conn_id>``.

    :param base_url: how MinerU reaches the api-server, e.g. ``https://airflow.example.com``
        (with the path prefix a reverse proxy adds, if any).
    """
    return f"{base_url.rstrip('/')}{CALLBACK_URL_PREFIX}/callback/{conn_id}"


def callback_seed_template(conn_id: str = DEFAULT_CONN_ID) -> str:
    """
    A Jinja template for an operator's ``seed=`` that reads the connection's callback secret at run time.

    Reading it through ``extra_dejson`` registers the value with Airflow's secrets masker (the extra's
    name contains ``secret``), so the Rendered Template view and the logs show ``***``.
    """
    return f"{{{{ conn.get({conn_id!r}).extra_dejson.{CALLBACK_SECRET_EXTRA} }}}}"
