"""
The seam between the hook and the API clients, checked over the source (issue 20).

Clients receive the transport typed by :class:`~airflow_provider_mineru.transport.MinerUTransport`
and never reach into the hook: no ``hook._x`` (nor any ``<name>._x`` of a hook or transport), no
parameter or attribute typed ``Any`` that carries the transport, no HTTP library imported.
Every flavor is one class found in the registry.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from airflow_provider_mineru.clients import CLIENTS, client_class
from airflow_provider_mineru.clients.base import MinerUClient
from airflow_provider_mineru.connection.form import API_FLAVORS
from airflow_provider_mineru.exceptions import MinerUValidationError

CLIENTS_DIR = Path(__file__).parents[2] / "airflow_provider_mineru" / "clients"
SOURCES = sorted(CLIENTS_DIR.glob("*.py"))
#: Names a client may call the object it sends through.
TRANSPORT_NAMES = {"hook", "transport"}
HTTP_LIBRARIES = {"requests", "aiohttp", "urllib3", "httpx", "requests_toolbelt"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_client_touches_a_private_member_of_the_hook_or_transport(path):
    found = [
        f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and isinstance(node.value, ast.Name)
        and node.value.id in TRANSPORT_NAMES
    ]
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_transport_is_typed_by_its_protocol_never_any(path):
    found = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            for argument in arguments:
                if argument.arg in TRANSPORT_NAMES:
                    annotation = ast.unparse(argument.annotation) if argument.annotation else "(none)"
                    if annotation != "MinerUTransport":
                        found.append(f"{path.name}:{node.lineno}: {node.name}({argument.arg}: {annotation})")
    assert found == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_clients_talk_http_only_through_the_transport(path):
    imported = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & HTTP_LIBRARIES


def test_every_flavor_is_one_registered_class_with_its_facts():
    assert set(CLIENTS) == set(API_FLAVORS)
    for flavor, cls in CLIENTS.items():
        assert issubclass(cls, MinerUClient) and cls.flavor == flavor
        assert client_class(flavor) is cls
        assert isinstance(cls.default_path, str) and cls.paid_submit_paths
    assert client_class(None) is CLIENTS["cloud"]
    with pytest.raises(MinerUValidationError, match="api_flavor"):
        client_class("v1")


def test_a_new_flavor_registers_itself_by_being_defined():
    class Probe(MinerUClient):
        flavor = "probe-flavor"
        default_path = "/probe"
        paid_submit_paths = ("/submit",)

    try:
        assert CLIENTS["probe-flavor"] is Probe
        assert Probe.__abstractmethods__  # a real one implements every endpoint
    finally:
        del CLIENTS["probe-flavor"]
