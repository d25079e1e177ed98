"""Why MinerUHook derives from BaseHook, and the one list of parsing options."""

from __future__ import annotations

import inspect
from dataclasses import fields

from airflow_provider_mineru.clients.v4_wire import OPTION_NAMES, ParseOptions
from airflow_provider_mineru.hooks.mineru import MinerUHook, ParseOptionKwargs
from airflow_provider_mineru.operators.base import MinerUBaseOperator
from airflow_provider_mineru.version_compat import BaseHook


def test_the_hook_is_a_base_hook_without_http_hook_s_bypasses():
    """
    ``HttpHook.run``, ``run_and_check`` and ``run_with_advanced_retry`` follow redirects to other
    hosts and read unbounded bodies; MinerUHook used to inherit them. Every request now goes through
    the hook's own bounded, typed, redirect-refusing methods.
    """
    assert issubclass(MinerUHook, BaseHook)
    assert not any(cls.__name__ == "HttpHook" for cls in MinerUHook.__mro__)
    for name in ("run", "run_and_check", "run_with_advanced_retry", "check_response", "url_from_endpoint"):
        assert not hasattr(MinerUHook, name), name


def test_the_hook_keeps_its_connection_form_and_keep_alive_sessions(monkeypatch):
    import json

    from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

    monkeypatch.setenv(
        "AIRFLOW_CONN_MINERU_BASE_TEST",
        json.dumps({"conn_type": "mineru", "host": "http://127.0.0.1:9/api/v4", "password": "t"}),
    )
    hook = MinerUHook("mineru_base_test")
    assert hook.base_url == "http://127.0.0.1:9/api/v4"
    assert MinerUHook.conn_type == "mineru" and MinerUHook.get_ui_field_behaviour()["relabeling"]
    files = hook.transport.sync.file_session
    for session in (hook.get_conn(), files):
        adapters = {type(session.get_adapter(f"{scheme}://x")) for scheme in ("http", "https")}
        assert adapters == {TCPKeepAliveAdapter}
    assert files.get_adapter("https://x")._pool_maxsize == 32
    assert "Authorization" not in files.headers and hook.get_conn().headers["Authorization"] == "Bearer t"


def test_one_list_of_parsing_options():
    """``ParseOptions`` is the list; the operators, the hook's kwargs type and the docs follow it."""
    assert tuple(f.name for f in fields(ParseOptions)) == OPTION_NAMES
    assert tuple(ParseOptionKwargs.__annotations__) == OPTION_NAMES
    parameters = inspect.signature(MinerUBaseOperator.__init__).parameters
    assert set(OPTION_NAMES) <= set(parameters)
    doc = MinerUBaseOperator.__doc__ or ""
    assert all(f":param {name}:" in doc for name in OPTION_NAMES)
