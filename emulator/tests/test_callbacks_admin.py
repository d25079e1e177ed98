"""Callbacks (checksum, retries) and the HTTP admin API."""

from __future__ import annotations

import hashlib
import json
import time

import requests
from emulator_client import Api, Receiver, sample

from mineru_emulator import MinerUEmulator, Timings


def checksum(uid: str, seed: str, content: str) -> str:
    return hashlib.sha256((uid + seed + content).encode()).hexdigest()


def test_callback_on_done_with_checksum(api: Api, receiver: Receiver) -> None:
    emu = api.emu
    task_id = api.submit(emu.sample_url("invoice.pdf"), callback=receiver.url, seed="s33d_x", data_id="d1")
    # nobody polls: the emulator drives the task to its end by itself
    (call,) = receiver.wait(1)
    assert call["content_type"] == "application/json"
    body = call["body"]
    assert set(body) == {"checksum", "content"}
    assert isinstance(body["content"], str)
    assert body["checksum"] == checksum(emu.uid, "s33d_x", body["content"])
    content = json.loads(body["content"])
    assert content["task_id"] == task_id
    assert content["state"] == "done"
    assert content["data_id"] == "d1"
    assert content == api.task(task_id)
    time.sleep(0.05)
    assert [c["attempt"] for c in emu.callbacks] == [1]
    assert emu.callbacks[0]["status"] == 200 and emu.callbacks[0]["task_id"] == task_id


def test_callback_on_failure(api: Api, receiver: Receiver) -> None:
    api.emu.fail_next_tasks("-60010: parsing failed")
    api.submit(api.emu.sample_url("invoice.pdf"), callback=receiver.url, seed="abc")
    (call,) = receiver.wait(1)
    content = json.loads(call["body"]["content"])
    assert content["state"] == "failed" and content["err_msg"] == "-60010: parsing failed"


def test_callback_uid_is_configurable(mineru_emulator_factory, receiver: Receiver) -> None:
    emu = mineru_emulator_factory(uid="user-42")
    Api(emu).submit(emu.sample_url("invoice.pdf"), callback=receiver.url, seed="k")
    (call,) = receiver.wait(1)
    assert call["body"]["checksum"] == checksum("user-42", "k", call["body"]["content"])


def test_callback_retries_up_to_five_attempts(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.0, per_page=0.0, converting=0.0, callback_backoff=0.01))
    receiver = Receiver(statuses=[500, 503, 404, 500, 500, 500, 500])
    try:
        Api(emu).submit(emu.sample_url("invoice.pdf"), callback=receiver.url, seed="abc")
        calls = receiver.wait(5)
        time.sleep(0.3)
        assert len(receiver.received) == 5  # then it gives up
        assert len({c["body"]["content"] for c in calls}) == 1
        attempts = emu.callbacks
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5]
        assert [a["status"] for a in attempts] == [500, 503, 404, 500, 500]
    finally:
        receiver.close()


def test_callback_stops_retrying_after_success(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.0, per_page=0.0, converting=0.0, callback_backoff=0.01))
    receiver = Receiver(statuses=[502, 201])  # only 200 counts as received
    try:
        Api(emu).submit(emu.sample_url("invoice.pdf"), callback=receiver.url, seed="abc")
        receiver.wait(3)
        time.sleep(0.2)
        assert [c["status"] for c in receiver.received] == [502, 201, 200]
    finally:
        receiver.close()


def test_callback_connection_errors_are_retried(mineru_emulator_factory) -> None:
    emu = mineru_emulator_factory(timings=Timings(pending=0.0, per_page=0.0, converting=0.0, callback_backoff=0.01))
    Api(emu).submit(emu.sample_url("invoice.pdf"), callback="http://127.0.0.1:9/hook", seed="abc")
    deadline = time.monotonic() + 5
    while len(emu.callbacks) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    attempts = emu.callbacks
    assert len(attempts) == 5
    assert all(a["status"] is None and a["error"] for a in attempts)


def test_batch_callbacks_per_file(api: Api, receiver: Receiver) -> None:
    files = {"a.pdf": sample("invoice.pdf"), "b.pdf": sample("annual_report.pdf")}
    api.upload_batch(files, callback=receiver.url, seed="batch_seed")
    calls = receiver.wait(2)
    assert len(calls) == 2
    for call in calls:
        assert call["body"]["checksum"] == checksum(api.emu.uid, "batch_seed", call["body"]["content"])
        assert json.loads(call["body"]["content"])["state"] == "done"


# -- admin API -------------------------------------------------------------------------------------


def test_admin_http_api(emu: MinerUEmulator) -> None:
    admin = emu.root_url + "/__emulator__"
    api = Api(emu)
    health = requests.get(admin + "/health", timeout=5).json()
    assert health["status"] == "ok" and health["base_url"] == emu.base_url

    created = requests.post(
        admin + "/faults", json={"endpoint": "get_task", "http_status": 503, "retry_after": 1, "times": 2}, timeout=5
    )
    assert created.status_code == 200 and created.json()["label"] == "http_503"
    assert api.get("/extract/task/x").status_code == 503
    faults = requests.get(admin + "/faults", timeout=5).json()
    assert faults[0]["fired"] == 1
    assert requests.delete(admin + "/faults", timeout=5).status_code == 200
    assert api.get("/extract/task/x").json()["code"] == -60012

    records = requests.get(admin + "/requests", timeout=5).json()
    get_tasks = [r for r in records if r["endpoint"] == "get_task"]
    assert [r["status"] for r in get_tasks] == [503, 200]
    assert get_tasks[0]["fault"] == "http_503" and get_tasks[0]["has_authorization"] is True
    assert all(r["endpoint"] == "admin" for r in records if r["path"].startswith("/__emulator__"))

    requests.post(admin + "/fail-next", json={"err_msg": "nope", "count": 1}, timeout=5)
    assert api.wait_task(api.submit(emu.sample_url("invoice.pdf")))["err_msg"] == "nope"
    requests.post(admin + "/stick", json={"state": "uploading", "match": "annual"}, timeout=5)
    stuck = api.submit(emu.sample_url("annual_report.pdf"))
    time.sleep(0.1)
    assert api.task(stuck)["state"] == "uploading"

    assert requests.post(admin + "/reset", timeout=5).json() == {"reset": True}
    assert api.get(f"/extract/task/{stuck}").json()["code"] == -60012
    assert requests.get(admin + "/callbacks", timeout=5).json() == []
    assert requests.delete(admin + "/requests", timeout=5).status_code == 200


def test_admin_errors(emu: MinerUEmulator) -> None:
    admin = emu.root_url + "/__emulator__"
    assert requests.post(admin + "/faults", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.post(admin + "/faults", json={"endpoint": "nope"}, timeout=5).status_code == 400
    assert requests.post(admin + "/stick", json={"state": "done"}, timeout=5).status_code == 400
    assert requests.post(admin + "/stick", json={}, timeout=5).status_code == 400
    assert requests.get(admin + "/nope", timeout=5).status_code == 404


def test_admin_fault_with_dict_msg_and_body(emu: MinerUEmulator) -> None:
    admin = emu.root_url + "/__emulator__"
    requests.post(admin + "/faults", json={"code": "-60009", "msg": {"en": "full", "zh": "满"}}, timeout=5)
    payload = Api(emu).get("/extract/task/x").json()
    assert payload["code"] == -60009 and payload["msg"] == {"en": "full", "zh": "满"}
    requests.post(admin + "/faults", json={"http_status": 502, "body": "<html>bad gateway</html>"}, timeout=5)
    response = Api(emu).get("/extract/task/x")
    assert response.status_code == 502 and response.text == "<html>bad gateway</html>"
