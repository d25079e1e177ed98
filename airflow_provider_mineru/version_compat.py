"""
The one place that knows where Airflow 2.11 and 3.x keep the names this provider uses.

Everything else imports Airflow names from here, so a future move in Airflow is fixed once.
``apache-airflow-providers-common-compat`` does most of the work; the rest is spelled out below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException, BaseHook, conf

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import (
        BaseOperator,
        BaseSensorOperator,
        Context,
        ObjectStoragePath,
        PokeReturnValue,
    )

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    get_base_airflow_version_tuple,
)

AIRFLOW_V_3_3_PLUS: bool = get_base_airflow_version_tuple() >= (3, 3, 0)

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk.log import mask_secret
else:  # Airflow 2.11
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AirflowException",
    "AirflowFailException",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Context",
    "ObjectStoragePath",
    "PokeReturnValue",
    "conf",
    "mask_secret",
]

#: Imported when first asked for: on Airflow 2.11 ``BaseOperator`` alone costs ~0.35 s, and the
#: hook (loaded in a triggerer's worker thread) needs none of these.
_LAZY = ("BaseOperator", "BaseSensorOperator", "Context", "ObjectStoragePath", "PokeReturnValue")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        # lazy: each name is imported on first use, so a triggerer thread pays only for what it touches
        from airflow.providers.common.compat import sdk

        value = getattr(sdk, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
