"""Provider metadata read by Airflow through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from airflow_provider_mineru import __version__
from airflow_provider_mineru.connection.form import CONN_FIELDS, CONN_TYPE, UI_FIELD_BEHAVIOUR

INTEGRATION = "MinerU"


def _ui_field_behaviour() -> dict[str, Any]:
    # Airflow 3.2+ reads the declarative form with hyphenated keys.
    return {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }


def get_provider_info() -> dict[str, Any]:
    """Describe the provider: package, versions, connection type, and its modules by role."""
    return {
        "package-name": "airflow-provider-mineru",
        "name": "MinerU",
        # Plain text: Airflow's providers page strips RST's ` _ < > and would run a link into the words.
        "description": "MinerU document parsing (https://mineru.net): PDFs, Office files and images "
        "to Markdown and JSON.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://mineru.net/apiManage/docs",
                "tags": ["service"],
            }
        ],
        "operators": [
            {"integration-name": INTEGRATION, "python-modules": ["airflow_provider_mineru.operators.mineru"]}
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_mineru.sensors.mineru"]}],
        "hooks": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_mineru.hooks.mineru"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["airflow_provider_mineru.triggers.mineru"]}],
        "connection-types": [
            {
                "connection-type": CONN_TYPE,
                "hook-class-name": "airflow_provider_mineru.hooks.mineru.MinerUHook",
                "hook-name": "MinerU",
                "ui-field-behaviour": _ui_field_behaviour(),
                "conn-fields": {
                    name: {"label": spec["label"], "description": spec["description"], "schema": spec["schema"]}
                    for name, spec in CONN_FIELDS.items()
                },
            }
        ],
    }
