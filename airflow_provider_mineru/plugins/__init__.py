"""
Airflow plugins of the MinerU provider.

- :class:`~airflow_provider_mineru.plugins.callbacks.MinerUCallbackPlugin` (``mineru_callbacks``):
  the api-server endpoint ``POST /mineru/callback/<conn_id>`` that verifies MinerU's callbacks and
  records them as asset events on :func:`callback_asset` (Airflow 3 only; see ``docs/callbacks.md``).
"""

from __future__ import annotations

from airflow_provider_mineru.plugins.callbacks import (
    CALLBACK_SECRET_EXTRA,
    CALLBACK_URL_PREFIX,
    MinerUCallbackPlugin,
    callback_asset,
    callback_seed_template,
    callback_url,
)

__all__ = [
    "CALLBACK_SECRET_EXTRA",
    "CALLBACK_URL_PREFIX",
    "MinerUCallbackPlugin",
    "callback_asset",
    "callback_seed_template",
    "callback_url",
]
