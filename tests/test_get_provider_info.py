"""Provider registration and the connection form, on whichever Airflow line is installed."""

from __future__ import annotations

import json

import pytest

from airflow_provider_mineru.connection.form import CONN_FIELDS
from airflow_provider_mineru.get_provider_info import get_provider_info
from airflow_provider_mineru.hooks.mineru import MinerUHook


def test_provider_info_matches_airflow_schema():
    import importlib.resources

    import jsonschema

    schema = json.loads((importlib.resources.files("airflow") / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_provider_is_discovered():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-mineru" in manager.providers
    assert "mineru" in manager.hooks


def test_modules_listed_in_provider_info_import():
    import importlib

    info = get_provider_info()
    for role in ("operators", "sensors", "hooks", "triggers"):
        for entry in info[role]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_ui_field_behaviour_and_declarative_form_agree():
    behaviour = MinerUHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API token"}
    declared = get_provider_info()["connection-types"][0]
    assert declared["ui-field-behaviour"]["hidden-fields"] == behaviour["hidden_fields"]
    assert set(declared["conn-fields"]) == set(CONN_FIELDS)


def test_form_widgets_from_the_same_fields():
    pytest.importorskip("flask_appbuilder", reason="the widget form exists where the FAB UI does (Airflow 2.x)")
    widgets = MinerUHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
