"""The plugin module on both Airflow lines: it imports everywhere, and serves only on Airflow 3."""

from __future__ import annotations

import importlib
import sys
import threading

import pytest

from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

MODULES = ["plugin", "endpoint", "handling", "verification", "credentials", "replays", "asset_events"]

airflow3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="FastAPI plugins (the api-server) are Airflow 3 only")


def test_module_imports_and_plugin_is_valid(monkeypatch):
    from airflow import plugins_manager

    from airflow_provider_mineru.callbacks import callback_asset
    from airflow_provider_mineru.plugins.callbacks.plugin import MinerUCallbackPlugin

    if not AIRFLOW_V_3_0_PLUS:
        monkeypatch.setattr(plugins_manager, "plugins", [])  # 2.11 checks against the loaded plugins
    assert MinerUCallbackPlugin.name == "mineru_callbacks"
    assert plugins_manager.is_valid_plugin(MinerUCallbackPlugin)  # what Airflow checks at load time
    assert callback_asset().uri == "mineru://callbacks/mineru_default"
    assert callback_asset("mineru_eu").uri == "mineru://callbacks/mineru_eu"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module):
    """On both lines: Airflow 2.11 imports the whole package (and serves nothing)."""
    importlib.import_module(f"airflow_provider_mineru.plugins.callbacks.{module}")


def test_the_plugin_loads_without_the_endpoint():
    """Every process that loads plugins imports the plugin module; only the api-server builds the endpoint."""
    package = "airflow_provider_mineru.plugins"
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.startswith(package)}
    try:
        importlib.import_module(f"{package}.callbacks.plugin")
        loaded = sorted(name for name in sys.modules if name.startswith(package))
    finally:
        for name in [name for name in sys.modules if name.startswith(package)]:
            del sys.modules[name]
        sys.modules.update(saved)
    assert loaded == [package, f"{package}.callbacks", f"{package}.callbacks.plugin"]


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 behaviour")
def test_airflow2_serves_nothing():
    from airflow_provider_mineru.plugins.callbacks.endpoint import create_app
    from airflow_provider_mineru.plugins.callbacks.plugin import MinerUCallbackPlugin, app

    assert MinerUCallbackPlugin.fastapi_apps == []
    assert app is None
    with pytest.raises(RuntimeError, match="needs Airflow 3"):
        create_app()


@airflow3
def test_airflow3_mounts_a_lazy_fastapi_app():
    from fastapi import FastAPI

    from airflow_provider_mineru.plugins.callbacks.plugin import LazyCallbackApp, MinerUCallbackPlugin

    (entry,) = MinerUCallbackPlugin.fastapi_apps
    assert entry["url_prefix"] == "/mineru"
    assert entry["name"] == "MinerU callbacks"
    lazy = LazyCallbackApp()
    assert lazy._app is None  # nothing built (nor FastAPI imported for it) until the first request
    assert isinstance(lazy.app, FastAPI)
    assert lazy.app is lazy.app


def test_callback_url_and_seed_template():
    from airflow_provider_mineru.callbacks import callback_seed_template, callback_url

    assert callback_url("https://airflow.example.com/") == "https://airflow.example.com/mineru/callback/mineru_default"
    assert callback_url("https://x/proxy", "mineru_eu") == "https://x/proxy/mineru/callback/mineru_eu"
    assert callback_seed_template() == "{{ conn.get('mineru_default').extra_dejson.callback_secret }}"


def test_recent_checksums_is_bounded_and_thread_safe():
    from airflow_provider_mineru.plugins.callbacks.replays import RecentChecksums

    seen = RecentChecksums(maxlen=3)
    assert [seen.reserve(c) for c in "abcd"] == [True] * 4
    assert len(seen) == 3
    assert "a" not in seen  # the oldest is forgotten
    assert not seen.reserve("d")
    seen.release("d")
    assert seen.reserve("d")

    many = RecentChecksums(maxlen=10_000)
    wins: list[bool] = []
    threads = [threading.Thread(target=lambda: wins.append(many.reserve("same"))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1


async def test_ids_airflow_could_not_hold_are_never_looked_up_and_share_one_cache_entry():
    from airflow_provider_mineru.plugins.callbacks.credentials import CredentialCache

    asked: list[str] = []
    cache = CredentialCache(lambda conn_id: asked.append(conn_id))
    for conn_id in ("a:b", "x" * 251, "../etc/passwd", "line\nbreak", "", "sp ace"):
        assert await cache.get(conn_id) is None
    assert asked == []
    assert len(cache._entries) == 1
    assert await cache.get("mineru_eu") is None
    assert asked == ["mineru_eu"]
