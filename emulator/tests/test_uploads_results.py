"""Presigned-style uploads, and the contents of result zips."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import re
import time
import zipfile
from urllib.parse import urlsplit

import pytest
import requests
from emulator_client import TOKEN, Api, sample

from mineru_emulator import MinerUEmulator, Timings
from mineru_emulator._samples import SAMPLE_PDF_TEXT

# -- uploads ---------------------------------------------------------------------------------------


def upload_urls(api: Api, *names: str) -> tuple[str, list[str]]:
    data = api.ok(api.post("/file-urls/batch", {"files": [{"name": n} for n in names]}))
    return data["batch_id"], data["file_urls"]


def test_content_type_on_put_is_signature_mismatch(api: Api) -> None:
    batch_id, (url,) = upload_urls(api, "a.pdf")
    response = requests.put(url, data=sample("invoice.pdf"), headers={"Content-Type": "application/pdf"}, timeout=5)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == "application/xml"
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text
    assert api.batch(batch_id)["extract_result"][0]["state"] == "waiting-file"
    # the same URL without Content-Type still works afterwards
    assert requests.put(url, data=sample("invoice.pdf"), timeout=5).status_code == 200
    assert api.wait_batch(batch_id)[0]["state"] == "done"


def test_urllib_default_content_type_is_rejected(api: Api) -> None:
    import urllib.error
    import urllib.request

    _, (url,) = upload_urls(api, "a.pdf")
    request = urllib.request.Request(url, data=b"%PDF-1.4", method="PUT")  # urllib adds a form Content-Type
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 403


def test_expired_upload_url(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(upload_url_ttl=0))
    _, (url,) = upload_urls(api, "a.pdf")
    time.sleep(0.01)
    response = requests.put(url, data=b"%PDF", timeout=5)
    assert response.status_code == 403
    assert "<Code>AccessDenied</Code>" in response.text
    assert "Request has expired" in response.text


def test_bad_or_missing_signature(api: Api) -> None:
    _, (url,) = upload_urls(api, "a.pdf")
    tampered = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    response = requests.put(tampered, data=b"%PDF", timeout=5)
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text
    other_expiry = re.sub(r"Expires=\d+", f"Expires={int(time.time()) + 999999}", url)
    assert requests.put(other_expiry, data=b"%PDF", timeout=5).status_code == 403
    assert requests.put(url.split("?")[0], data=b"%PDF", timeout=5).status_code == 403


def test_put_needs_no_auth_and_records_none(api: Api) -> None:
    batch_id, (url,) = upload_urls(api, "a.pdf")
    assert requests.put(url, data=sample("invoice.pdf"), timeout=5).status_code == 200
    (put,) = api.emu.requests_to("upload")
    assert put.has_authorization is False
    assert put.content_type is None
    assert put.body_size == len(sample("invoice.pdf"))
    assert put.method == "PUT"
    assert put.path.startswith(f"/api-upload/{batch_id}/")


def test_chunked_upload(api: Api) -> None:
    batch_id, (url,) = upload_urls(api, "report.pdf")
    data = sample("annual_report.pdf")

    def chunks():
        for i in range(0, len(data), 500):
            yield data[i : i + 500]

    response = requests.put(url, data=chunks(), timeout=5)  # a generator: Transfer-Encoding: chunked
    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{hashlib.md5(data).hexdigest().upper()}"'
    (item,) = api.wait_batch(batch_id)
    assert item["state"] == "done"
    zf = api.download_zip(item["full_zip_url"])
    assert zf.read("report_origin.pdf") == data


def test_upload_over_the_size_limit_fails_the_task(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(max_file_bytes=1000))
    batch_id = api.upload_batch({"big.pdf": sample("annual_report.pdf")})
    (item,) = api.wait_batch(batch_id)
    assert item["state"] == "failed"
    assert item["err_msg"].startswith("-60005")


def test_empty_and_corrupt_uploads_fail(api: Api) -> None:
    batch_id = api.upload_batch({"empty.pdf": b"", "corrupt.pdf": b"garbage", "scan.jpg": b""})
    items = api.wait_batch(batch_id)
    assert [i["state"] for i in items] == ["failed"] * 3
    assert items[0]["err_msg"].startswith("-60004")
    assert items[1]["err_msg"].startswith("-60003")
    assert items[2]["err_msg"].startswith("-60004")


def test_second_put_is_accepted_and_ignored(api: Api) -> None:
    batch_id, (url,) = upload_urls(api, "a.pdf")
    assert requests.put(url, data=sample("invoice.pdf"), timeout=5).status_code == 200
    assert requests.put(url, data=b"other", timeout=5).status_code == 200
    (item,) = api.wait_batch(batch_id)
    assert item["state"] == "done"


def test_upload_keeps_the_connection_alive_after_403(api: Api) -> None:
    _, (url,) = upload_urls(api, "a.pdf")
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    target = f"{parts.path}?{parts.query}"
    conn.request("PUT", target, body=b"x" * 100_000, headers={"Content-Type": "application/pdf"})
    response = conn.getresponse()
    response.read()
    assert response.status == 403
    sock = conn.sock
    conn.request("PUT", target, body=sample("invoice.pdf"))
    response = conn.getresponse()
    response.read()
    assert response.status == 200
    assert conn.sock is sock
    conn.close()


def test_upload_url_host_follows_the_host_header(api: Api) -> None:
    emu = api.emu
    response = api.session.post(
        emu.base_url + "/file-urls/batch",
        json={"files": [{"name": "a.pdf"}]},
        headers={"Host": f"host.docker.internal:{emu.port}"},
        timeout=5,
    )
    (url,) = response.json()["data"]["file_urls"]
    assert url.startswith(f"http://host.docker.internal:{emu.port}/api-upload/")


# -- result zips -----------------------------------------------------------------------------------


def done_zip(api: Api, task_id: str) -> zipfile.ZipFile:
    data = api.wait_task(task_id)
    assert data["state"] == "done", data
    return api.download_zip(data["full_zip_url"])


def test_zip_members_and_real_text(api: Api) -> None:
    emu = api.emu
    zf = done_zip(api, api.submit(emu.sample_url("annual_report.pdf")))
    names = set(zf.namelist())
    assert names == {
        "full.md",
        "annual_report_content_list.json",
        "layout.json",
        "annual_report_model.json",
        "annual_report_origin.pdf",
    }
    markdown = zf.read("full.md").decode()
    pages = SAMPLE_PDF_TEXT["annual_report.pdf"]
    assert markdown.startswith(f"# {pages[0][0]}\n")
    for page in pages:
        for line in page:
            assert line in markdown
    # pages in order
    assert markdown.index(pages[0][1]) < markdown.index(pages[1][0]) < markdown.index(pages[2][0])
    assert zf.read("annual_report_origin.pdf") == sample("annual_report.pdf")

    blocks = json.loads(zf.read("annual_report_content_list.json"))
    assert blocks[0] == {**blocks[0], "type": "text", "text": pages[0][0], "text_level": 1, "page_idx": 0}
    assert {b["page_idx"] for b in blocks} == {0, 1, 2}
    for block in blocks:
        assert block["type"] in ("text", "title", "image", "table")
        x0, y0, x1, y1 = block["bbox"]
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 1000
    assert [b["text"] for b in blocks if b["page_idx"] == 1] == pages[1]

    layout = json.loads(zf.read("layout.json"))
    assert [p["page_idx"] for p in layout["pdf_info"]] == [0, 1, 2]
    model = json.loads(zf.read("annual_report_model.json"))
    assert len(model) == 3 and all("layout_dets" in page for page in model)


def test_page_ranges_are_honoured(api: Api) -> None:
    emu = api.emu
    pages = SAMPLE_PDF_TEXT["research_paper.pdf"]
    zf = done_zip(api, api.submit(emu.sample_url("research_paper.pdf"), page_ranges="2 - -2"))
    markdown = zf.read("full.md").decode()
    for line in pages[1] + pages[2]:
        assert line in markdown
    for line in pages[0] + pages[3]:
        assert line not in markdown
    blocks = json.loads(zf.read("research_paper_content_list.json"))
    assert {b["page_idx"] for b in blocks} == {1, 2}


def test_batch_file_page_ranges_are_honoured(api: Api) -> None:
    emu = api.emu
    pages = SAMPLE_PDF_TEXT["research_paper.pdf"]
    body = {"files": [{"url": emu.sample_url("research_paper.pdf"), "page_ranges": "-1"}]}
    (item,) = api.wait_batch(api.ok(api.post("/extract/task/batch", body))["batch_id"])
    markdown = api.download_zip(item["full_zip_url"]).read("full.md").decode()
    assert pages[3][1] in markdown and pages[0][1] not in markdown


def test_tables_are_html(api: Api) -> None:
    zf = done_zip(api, api.submit(api.emu.sample_url("invoice.pdf")))
    markdown = zf.read("full.md").decode()
    assert "<table>" in markdown and "<td>Document parsing credits</td>" in markdown
    blocks = json.loads(zf.read("invoice_content_list.json"))
    (table,) = [b for b in blocks if b["type"] == "table"]
    assert table["table_body"].startswith("<table>")


def test_extra_formats(api: Api) -> None:
    task_id = api.submit(api.emu.sample_url("invoice.pdf"), extra_formats=["docx", "html", "latex"])
    zf = done_zip(api, task_id)
    assert {"invoice.docx", "invoice.html", "invoice.tex"} <= set(zf.namelist())
    docx = zipfile.ZipFile(io.BytesIO(zf.read("invoice.docx")))
    assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= set(docx.namelist())
    assert "Invoice INV-2024-0042" in docx.read("word/document.xml").decode()
    page = zf.read("invoice.html").decode()
    assert page.startswith("<!DOCTYPE html>") and "<h1>Invoice INV-2024-0042</h1>" in page
    tex = zf.read("invoice.tex").decode()
    assert "\\documentclass" in tex and "\\end{document}" in tex and "Payment terms" in tex


def test_image_input_has_an_image_member(api: Api) -> None:
    batch_id = api.upload_batch({"scanned_receipt.png": sample("scanned_receipt.png")})
    (item,) = api.wait_batch(batch_id)
    zf = api.download_zip(item["full_zip_url"])
    images = [n for n in zf.namelist() if n.startswith("images/")]
    assert len(images) == 1
    assert re.fullmatch(r"images/[0-9a-f]{64}\.jpg", images[0])
    assert f"![]({images[0]})" in zf.read("full.md").decode()
    assert hashlib.sha256(zf.read(images[0])).hexdigest() in images[0]
    assert zf.read("scanned_receipt_origin.pdf").startswith(b"%PDF")


def test_office_input_notes_name_and_size(api: Api) -> None:
    batch_id = api.upload_batch({"slides.pptx": b"PK" + b"\0" * 98})
    (item,) = api.wait_batch(batch_id)
    markdown = api.download_zip(item["full_zip_url"]).read("full.md").decode()
    assert "slides.pptx" in markdown and "100 bytes" in markdown


def test_html_input_with_mineru_html(api: Api) -> None:
    page = b"<html><head><title>Hello page</title></head><body><p>First paragraph.</p></body></html>"
    batch_id = api.upload_batch({"page.html": page}, model_version="MinerU-HTML")
    (item,) = api.wait_batch(batch_id)
    markdown = api.download_zip(item["full_zip_url"]).read("full.md").decode()
    assert "# Hello page" in markdown and "First paragraph." in markdown


def test_member_prefix_id(mineru_emulator_factory) -> None:
    api = Api(mineru_emulator_factory(member_prefix="id"))
    data = api.wait_task(api.submit(api.emu.sample_url("invoice.pdf")))
    zf = api.download_zip(data["full_zip_url"])
    zip_id = data["full_zip_url"].rsplit("/", 1)[1][: -len(".zip")]
    assert f"{zip_id}_content_list.json" in zf.namelist()
    assert f"{zip_id}_origin.pdf" in zf.namelist()
    assert not any(n.startswith("invoice") for n in zf.namelist())


def test_download_needs_no_auth_and_is_built_once(api: Api) -> None:
    data = api.wait_task(api.submit(api.emu.sample_url("invoice.pdf")))
    first = requests.get(data["full_zip_url"], timeout=5)
    second = requests.get(data["full_zip_url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.headers["Content-Type"] == "application/zip"
    records = api.emu.requests_to("download")
    assert [r.has_authorization for r in records] == [False, True]


def test_download_ranges(api: Api) -> None:
    url = api.wait_task(api.submit(api.emu.sample_url("invoice.pdf")))["full_zip_url"]
    full = requests.get(url, timeout=5).content
    part = requests.get(url, headers={"Range": "bytes=10-"}, timeout=5)
    assert part.status_code == 206
    assert part.content == full[10:]
    assert part.headers["Content-Range"] == f"bytes 10-{len(full) - 1}/{len(full)}"
    assert requests.get(url, headers={"Range": "bytes=-5"}, timeout=5).content == full[-5:]
    assert requests.get(url, headers={"Range": f"bytes={len(full)}-"}, timeout=5).status_code == 416
    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(full))


def test_unknown_zip_is_404(emu: MinerUEmulator) -> None:
    assert requests.get(emu.root_url + "/cdn/pdf/nope.zip", timeout=5).status_code == 404


def test_results_dir_is_removed_on_stop() -> None:
    import os

    emu = MinerUEmulator(timings=Timings.fast()).start()
    api = Api(emu)
    api.download_zip(api.wait_task(api.submit(emu.sample_url("invoice.pdf")))["full_zip_url"])
    workdir = emu._workdir
    assert workdir and os.path.isdir(workdir)
    emu.stop()
    assert not os.path.exists(workdir)


def test_zip_url_host_follows_the_host_header(api: Api) -> None:
    emu = api.emu
    task_id = api.wait_task(api.submit(emu.sample_url("invoice.pdf")))["task_id"]
    headers = {"Host": f"host.docker.internal:{emu.port}"}
    data = api.ok(api.session.get(f"{emu.base_url}/extract/task/{task_id}", headers=headers, timeout=5))
    assert data["full_zip_url"].startswith(f"http://host.docker.internal:{emu.port}/cdn/pdf/")
    bogus = {"Host": "evil/path?x"}
    data = api.ok(api.session.get(f"{emu.base_url}/extract/task/{task_id}", headers=bogus, timeout=5))
    assert data["full_zip_url"].startswith(emu.root_url + "/cdn/pdf/")
