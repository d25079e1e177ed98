"""
Operating at account scale: MinerU's limits belong to the account, not to a task.

| module | owns |
|---|---|
| ``limits.py`` | ``AccountLimits`` from the connection's extras, and their form fields |
| ``store.py`` | the account store: JSON documents with compare-and-swap (local directory, S3) |
| ``budget.py`` | pages and files per UTC day per connection: reserve, release, settle |
| ``admission.py`` | ``on_budget_exhausted``: what a task sends, defers or skips (pure) |
| ``rates.py`` | deployment-wide submit and query limiters (leased tokens), poll pacing of waits |
| ``metrics.py`` | one typed function per metric, through Airflow's ``Stats`` |
| ``manifest.py`` | the run manifest beside the outputs |
| ``shared.py`` | ``account_for(conn_id, limits)``: the store, budget and limiters of a connection, once per process |

Not wired into the operators, the hook or the triggers yet: see ``docs/operations.md``.
"""
