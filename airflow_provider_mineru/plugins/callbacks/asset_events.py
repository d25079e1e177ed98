"""
A verified callback as an asset event on :func:`~airflow_provider_mineru.callbacks.callback_asset`.

Events are created the way the REST API's ``POST /api/v2/assets/events`` creates them
(``AssetManager.register_asset_change``): DAGs scheduled on the asset are queued, asset listeners
are called, the event shows in the UI. The replay claim
(:class:`~airflow_provider_mineru.plugins.callbacks.replays.ReplayClaims`) is written in the same
transaction, so a claim never outlives an event that failed, and a replay never records a second one.
"""

from __future__ import annotations

import enum
from typing import Any

from airflow.utils.session import create_session
from sqlalchemy import select

from airflow_provider_mineru.callbacks import callback_asset
from airflow_provider_mineru.models import DocumentResult
from airflow_provider_mineru.plugins.callbacks.replays import ReplayClaims
from airflow_provider_mineru.version_compat import AIRFLOW_V_3_0_PLUS

if AIRFLOW_V_3_0_PLUS:  # callbacks are served on Airflow 3 only; 2.11 imports this module and serves nothing
    from airflow.assets.manager import asset_manager
    from airflow.models.asset import AssetModel


class Recorded(enum.Enum):
    """What became of a verified callback."""

    #: an asset event was recorded (and its checksum claimed)
    EVENT = "event"
    #: no DAG declares the asset: nothing recorded
    NO_ASSET = "no asset"
    #: the checksum was claimed before (by any worker, also before a restart): nothing recorded
    REPLAY = "replay"


def event_extra(result: DocumentResult) -> dict[str, Any]:
    """The asset event's ``extra``: the task state MinerU posted (what the download operator takes)."""
    extra: dict[str, Any] = {
        "task_id": result.task_id,
        "data_id": result.data_id,
        "state": result.state.value,
        "full_zip_url": result.full_zip_url,
        "err_msg": result.err_msg,
    }
    if result.file_name:
        extra["file_name"] = result.file_name
    return extra


def record_asset_event(conn_id: str, extra: dict[str, Any], checksum: str, claims: ReplayClaims) -> Recorded:
    """
    Claim ``checksum`` and add an asset event on ``callback_asset(conn_id)``, in one transaction.

    Blocking (the metadata database). A database error propagates: nothing is committed.
    """
    asset = callback_asset(conn_id)
    with create_session() as session:
        models = session.scalars(select(AssetModel).where(AssetModel.uri == asset.uri)).all()
        if not models:
            return Recorded.NO_ASSET
        model = next((m for m in models if m.name == asset.name), models[0])
        if not claims.claim(session, model.id, checksum, task_id=extra["task_id"], state=extra["state"]):
            return Recorded.REPLAY
        event = asset_manager.register_asset_change(
            asset=model, extra=extra, source_is_api=True, api_user_teams=set(), session=session
        )
        if event is None:  # the asset went away since the query above
            session.rollback()
            return Recorded.NO_ASSET
        return Recorded.EVENT
