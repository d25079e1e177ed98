"""
Airflow plugins of the MinerU provider.

- :class:`~airflow_provider_mineru.plugins.callbacks.plugin.MinerUCallbackPlugin` (``mineru_callbacks``):
  the api-server endpoint ``POST /mineru/callback/<conn_id>`` that verifies MinerU's callbacks and
  records them as asset events (Airflow 3 only; see ``docs/callbacks.md``). What DAG authors import
  for it (``callback_asset``, ``callback_url``, ``callback_seed_template``) is in
  :mod:`airflow_provider_mineru.callbacks`.
"""
