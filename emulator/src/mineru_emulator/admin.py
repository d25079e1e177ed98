"""
The admin API under ``/__emulator__/``: health, faults, the request log, callbacks, reset and
the task rules, over HTTP (no auth). It scripts the emulator through its public methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, Protocol

from mineru_emulator.faults import Fault
from mineru_emulator.http import RecordedRequest, Request

#: The admin API's path prefix.
ADMIN_PATH = "/__emulator__"


class Scriptable(Protocol):
    """What the admin API drives (:class:`~mineru_emulator.MinerUEmulator`)."""

    @property
    def requests(self) -> list[RecordedRequest]: ...

    @property
    def callbacks(self) -> list[dict[str, Any]]: ...

    @property
    def faults(self) -> list[Fault]: ...

    def inject(self, fault: Fault) -> Fault: ...

    def clear_faults(self) -> None: ...

    def clear_requests(self) -> None: ...

    def reset(self) -> None: ...

    def fail_next_tasks(self, err_msg: str, count: int = 1, match: str | None = None) -> None: ...

    def stick(self, state: str, count: int = 1, match: str | None = None) -> None: ...


class AdminApi:
    """
    The handler of every ``/__emulator__/<action>`` request.

    :param emulator: the emulator it scripts.
    :param health: the ``GET health`` answer.
    :param default_fail_msg: the ``err_msg`` of ``POST fail-next`` without one.
    """

    def __init__(self, emulator: Scriptable, health: Callable[[], dict[str, Any]], default_fail_msg: str) -> None:
        self.emulator = emulator
        self.health = health
        self.default_fail_msg = default_fail_msg

    def __call__(self, request: Request) -> None:
        emu = self.emulator
        method = request.method
        action = request.arg or ""
        payload = request.json if isinstance(request.json, dict) else {}
        try:
            if action == "health" and method == "GET":
                request.send_json(self.health())
            elif action == "faults" and method == "POST":
                allowed = {f.name for f in fields(Fault)} - {"fired"}
                unknown = set(payload) - allowed
                if unknown:
                    raise ValueError(f"unknown fault fields: {sorted(unknown)}")
                fault = emu.inject(Fault(**payload))
                request.send_json(fault.to_dict())
            elif action == "faults" and method == "GET":
                request.send_json([fault.to_dict() for fault in emu.faults])
            elif action == "faults" and method == "DELETE":
                emu.clear_faults()
                request.send_json({"cleared": True})
            elif action == "requests" and method == "GET":
                request.send_json([record.to_dict() for record in emu.requests])
            elif action == "requests" and method == "DELETE":
                emu.clear_requests()
                request.send_json({"cleared": True})
            elif action == "callbacks" and method == "GET":
                request.send_json(emu.callbacks)
            elif action == "reset" and method == "POST":
                emu.reset()
                request.send_json({"reset": True})
            elif action == "fail-next" and method == "POST":
                err_msg = payload.get("err_msg") or self.default_fail_msg
                emu.fail_next_tasks(str(err_msg), int(payload.get("count", 1)), payload.get("match"))
                request.send_json({"ok": True})
            elif action == "stick" and method == "POST":
                state = payload.get("state")
                if not isinstance(state, str) or not state:
                    raise ValueError("state is required")
                emu.stick(state, int(payload.get("count", 1)), payload.get("match"))
                request.send_json({"ok": True})
            else:
                request.send_json({"error": f"no admin action {method} /{action}"}, 404)
        except (TypeError, ValueError) as exc:
            request.send_json({"error": str(exc)}, 400)
