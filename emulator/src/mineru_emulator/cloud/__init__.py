"""
The MinerU cloud API (``mineru.net``, ``/api/v4``) room of the emulator.

- :mod:`~mineru_emulator.cloud.contract`: error codes and request validation, as data.
- :mod:`~mineru_emulator.cloud.state`: tasks, batches, the state machine and the page
  quota (no HTTP).
- :mod:`~mineru_emulator.cloud.account`: the account's rates and daily limits, their counters
  and clock (no HTTP).
- :mod:`~mineru_emulator.cloud.documents`: fetching, inspecting and zipping documents.
- :mod:`~mineru_emulator.cloud.result_zip`: the old home of :mod:`mineru_emulator.results` (re-exports it).
- :mod:`~mineru_emulator.cloud.responses`: endpoint handlers, from parsed request to
  answer.
- :mod:`~mineru_emulator.cloud.routes`: the route table (method + path -> handler).
"""
