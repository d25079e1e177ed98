"""
The Airflow plugin ``mineru_callbacks``: mounts the callback endpoint in the api-server (Airflow 3).

Every Airflow process that loads plugins (scheduler, workers, triggerer, api-server) imports this
module, and only the api-server serves it: the endpoint (FastAPI, the asset manager, the replay
claims) is imported and built when the first request arrives (:class:`LazyCallbackApp`). On Airflow
2.11 the plugin loads and serves nothing (its ``fastapi_apps`` is empty).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowPlugin

from airflow_provider_mineru.callbacks import CALLBACK_URL_PREFIX
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

if TYPE_CHECKING:
    from fastapi import FastAPI

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def build_endpoint() -> FastAPI:
    """The endpoint's FastAPI app (:func:`~airflow_provider_mineru.plugins.callbacks.endpoint.create_app`)."""
    # Imported here: every process loading plugins imports this module, only the api-server serves it
    # (measured after Airflow itself: this module 10-20 ms; the endpoint, FastAPI and the asset manager 2-3.5 s
    # more, most of which the api-server has loaded already).
    from airflow_provider_mineru.plugins.callbacks.endpoint import create_app

    return create_app()


class LazyCallbackApp:
    """An ASGI app that builds the endpoint at its first request (FastAPI and the rest are imported then)."""

    def __init__(self, factory: Callable[[], FastAPI] = build_endpoint) -> None:
        self._factory = factory
        self._app: FastAPI | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> FastAPI:
        """The FastAPI app, built on first use."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        await self.app(scope, receive, send)


#: The ASGI app the plugin mounts (None on Airflow 2.11).
app: LazyCallbackApp | None = LazyCallbackApp() if AIRFLOW_V_3_0_PLUS else None


class MinerUCallbackPlugin(AirflowPlugin):
    """Serves ``POST <api-server>/mineru/callback/<conn_id>`` for MinerU callbacks (Airflow 3 only)."""

    name = "mineru_callbacks"
    fastapi_apps = (
        [{"app": app, "url_prefix": CALLBACK_URL_PREFIX, "name": "MinerU callbacks"}] if app is not None else []
    )
