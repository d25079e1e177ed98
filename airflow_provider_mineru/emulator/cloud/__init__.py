"""
The MinerU cloud API (``mineru.net``, ``/api/v4``) room of the emulator.

- :mod:`~airflow_provider_mineru.emulator.cloud.contract`: error codes and request validation, as data.
- :mod:`~airflow_provider_mineru.emulator.cloud.state`: tasks, batches, the state machine and the page
  quota (no HTTP).
- :mod:`~airflow_provider_mineru.emulator.cloud.documents`: fetching, inspecting and zipping documents.
- :mod:`~airflow_provider_mineru.emulator.cloud.result_zip`: building MinerU-like result zips.
- :mod:`~airflow_provider_mineru.emulator.cloud.responses`: endpoint handlers, from parsed request to
  answer.
- :mod:`~airflow_provider_mineru.emulator.cloud.routes`: the route table (method + path -> handler).
"""
