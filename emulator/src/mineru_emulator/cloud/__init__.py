"""
The MinerU cloud API (``mineru.net``, ``/api/v4``) room of the emulator.

- :mod:`~mineru_emulator.cloud.contract`: error codes and request validation, as data.
- :mod:`~mineru_emulator.cloud.state`: tasks, batches, the state machine and the page
  quota (no HTTP).
- :mod:`~mineru_emulator.cloud.documents`: fetching, inspecting and zipping documents.
- :mod:`~mineru_emulator.cloud.result_zip`: building MinerU-like result zips.
- :mod:`~mineru_emulator.cloud.responses`: endpoint handlers, from parsed request to
  answer.
- :mod:`~mineru_emulator.cloud.routes`: the route table (method + path -> handler).
"""
