"""
Receive MinerU's callbacks in the Airflow 3 api-server and turn each one into an asset event.

MinerU POSTs ``{"checksum": sha256(uid + seed + content), "content": "<JSON task state>"}`` to a
task's ``callback`` URL when the task ends; the plugin serves ``POST /mineru/callback/{conn_id}``.
One module per job:

- :mod:`.plugin`: the Airflow plugin ``mineru_callbacks`` and the lazily built ASGI app it mounts;
- :mod:`.endpoint`: the FastAPI app, the route, the body-size cap;
- :mod:`.handling`: the steps of one callback, in order, and the answer of each outcome;
- :mod:`.verification`: the body's shape and its checksum (one 403 for every reason);
- :mod:`.credentials`: the connections' ``uid`` / ``callback_secret``, cached, looked up off-pool;
- :mod:`.replays`: refusing replays (each worker's memory, claims in Airflow's asset state store);
- :mod:`.asset_events`: the asset event, written with its replay claim in one transaction.

What DAG authors import (``callback_asset``, ``callback_url``, ``callback_seed_template``) is in
:mod:`airflow_provider_mineru.callbacks`. See ``docs/callbacks.md``.
"""
