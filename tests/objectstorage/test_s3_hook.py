"""MinerUHook and source resolution against a real S3-compatible server: stream from S3, extract into S3."""

from __future__ import annotations

import pytest

from airflow_provider_mineru.exceptions import MinerUValidationError
from airflow_provider_mineru.hooks.mineru import MinerUHook
from airflow_provider_mineru.models import MinerUState
from airflow_provider_mineru.version_compat import ObjectStoragePath
from tests.helpers import wait_batch
from tests.objectstorage.conftest import INPUT_PREFIX, SAMPLE_PDFS, SAMPLES

PDF_NAMES = [pdf.name for pdf in SAMPLE_PDFS]


class TestResolveSources:
    def test_prefix_url_lists_every_document(self, mineru_conn, bucket):
        sources = MinerUHook().resolve_sources(bucket.url(INPUT_PREFIX))
        assert [s.name for s in sources] == PDF_NAMES  # README.txt is not a document: skipped
        assert [s.size for s in sources] == [pdf.stat().st_size for pdf in SAMPLE_PDFS]
        assert [s.location for s in sources] == [bucket.url(INPUT_PREFIX + name) for name in PDF_NAMES]
        assert not any(s.is_local for s in sources)
        with sources[0].open() as handle:
            assert handle.read() == SAMPLE_PDFS[0].read_bytes()
        assert mineru_conn.requests == []  # resolving never talks to MinerU

    def test_prefix_path_object(self, mineru_conn, bucket):
        sources = MinerUHook().resolve_sources(ObjectStoragePath(bucket.url(INPUT_PREFIX)))
        assert [s.name for s in sources] == PDF_NAMES

    def test_object_path_with_conn_id_argument(self, mineru_conn, bucket, aws_conn):
        path = ObjectStoragePath(f"s3://{bucket.name}/{INPUT_PREFIX}invoice.pdf", conn_id=aws_conn)
        (source,) = MinerUHook().resolve_sources([path])
        assert (source.name, source.size) == ("invoice.pdf", (SAMPLES / "invoice.pdf").stat().st_size)

    def test_glob_on_object_storage(self, mineru_conn, bucket):
        sources = MinerUHook().resolve_sources(bucket.url(f"{INPUT_PREFIX}*.pdf"))
        assert [s.name for s in sources] == PDF_NAMES

    def test_missing_object_fails_before_any_request(self, mineru_conn, bucket):
        with pytest.raises(MinerUValidationError, match="no such object"):
            MinerUHook().resolve_sources(bucket.url(f"{INPUT_PREFIX}missing.pdf"))
        assert mineru_conn.requests == []

    def test_skipped_objects_are_logged_and_a_fake_pdf_is_refused_with_a_ranged_read(self, mineru_conn, bucket, caplog):
        fake = b"<html><body>Access denied</body></html>" + b" " * 10_000
        bucket.client.put_object(Bucket=bucket.name, Key="other/fake.pdf", Body=fake)
        with caplog.at_level("WARNING", logger="airflow_provider_mineru.inputs.sources"):
            MinerUHook().resolve_sources(bucket.url(INPUT_PREFIX))
        assert "skipped 1 of 4 files" in caplog.text and "README.txt" in caplog.text
        with pytest.raises(MinerUValidationError, match=r"fake\.pdf.*must be a PDF.*HTML") as raised:
            MinerUHook().resolve_sources([bucket.url(f"{INPUT_PREFIX}invoice.pdf"), bucket.url("other/fake.pdf")])
        assert "paths[1]" in str(raised.value)
        assert mineru_conn.requests == []

    def test_file_scheme_path_object(self, mineru_conn):
        sources = MinerUHook().resolve_sources(ObjectStoragePath(f"file://{SAMPLES / 'invoice.pdf'}"))
        assert [(s.name, s.is_local, s.page_count()) for s in sources] == [("invoice.pdf", True, 2)]


class TestUploadAndExtract:
    @pytest.mark.parametrize(
        "as_object",
        [pytest.param(True, id="ObjectStoragePath"), pytest.param(False, id="url-string")],
    )
    def test_stream_from_s3_then_extract_into_s3(self, mineru_conn, bucket, as_object):
        hook = MinerUHook()
        receipt = (SAMPLES / "scanned_receipt.png").read_bytes()
        bucket.client.put_object(Bucket=bucket.name, Key="scans/scanned_receipt.png", Body=receipt)
        keys = [f"{INPUT_PREFIX}invoice.pdf", "scans/scanned_receipt.png"]
        sources = [ObjectStoragePath(bucket.url(key)) if as_object else bucket.url(key) for key in keys]
        grant = hook.request_upload_urls(["invoice.pdf", "scanned_receipt.png"])

        for url, source, key in zip(grant.file_urls, sources, keys, strict=True):
            assert hook.upload_file(url, source) == bucket.size(key)
        uploads = mineru_conn.requests_to("upload")
        assert [(u.status, u.body_size) for u in uploads] == [(200, bucket.size(key)) for key in keys]
        assert not any(u.has_authorization for u in uploads)  # no MinerU token, no AWS signature

        invoice, scan = wait_batch(hook, grant.batch_id, 2).files
        assert invoice.state is MinerUState.DONE and scan.state is MinerUState.DONE

        extracted = {}
        for name, document in (("invoice", invoice), ("receipt", scan)):
            target = ObjectStoragePath(bucket.url(f"out/{name}")) if as_object else bucket.url(f"out/{name}")
            extracted[name] = result = hook.download_and_extract(document.full_zip_url, target)
            assert str(result.target).endswith(f"{bucket.name}/out/{name}")
            assert result.markdown == "full.md"
            assert result.total_bytes == sum(bucket.size(f"out/{name}/{member}") for member in result.files)
        assert bucket.keys("out/") == sorted(
            f"out/{name}/{member}" for name, result in extracted.items() for member in result.files
        )

        # MinerU parsed the very bytes read from S3: the Markdown carries the invoice's text.
        assert "Invoice INV-2024-0042" in bucket.read("out/invoice/full.md").decode()
        content_list = extracted["invoice"].content_list
        assert content_list and b"INV-2024-0042" in bucket.read(f"out/invoice/{content_list}")
        # Binary members land byte for byte: the receipt's picture comes back under images/.
        (image,) = [member for member in extracted["receipt"].files if member.startswith("images/")]
        assert bucket.read(f"out/receipt/{image}") == receipt
        assert image in bucket.read("out/receipt/full.md").decode()
