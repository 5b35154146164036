"""The document extractor run by the engine on real files: a PDF served over HTTP and fetched
through the safe fetch path, a .docx given inline as base64, a Markdown file in the uploads
bucket (S3 on moto) under the tenant's prefix, a list of files; and the refusals: another
tenant's key, a metadata address, a missing file, a format the parsers do not read."""

from __future__ import annotations

import base64
import functools
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from shared.workflows.engine.files import S3FileStore
from shared.workflows.engine.runner import NodeRunner
from shared.workflows.fetch.wiring import http_fetcher
from shared.workflows.validation import validate_document
from tests.support.documents import Heading, Table, make_docx, make_pdf, page_marker
from tests.support.engine_runs import DrivenRun, document, drive, ports

BUCKET = "stratus-uploads-test"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("served")
    make_pdf(root / "report.pdf", pages=2, words_per_page=120)
    (root / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    return root


@pytest.fixture(scope="module")
def served(files_dir: Path) -> Iterator[str]:
    """A loopback file server (the test environment's egress policy allows loopback)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(files_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def docx_bytes(tmp_path: Path) -> bytes:
    path = make_docx(tmp_path / "memo.docx", [Heading("Quarterly memo"), "Revenue grew in every region.",
                                              Table([["Region", "Growth"], ["North", "12%"]])])
    return path.read_bytes()


def extract(value: Any, *, is_array_file: bool = False, tenant_id: uuid.UUID | None = None,
            files: Any = None, strategy: str = "fail") -> DrivenRun:
    doc = document([
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "file", "type": "array[object]" if is_array_file else "object"}]}},
        {"id": "de", "type": "document_extractor", "error_strategy": strategy,
         "config": {"variable_selector": ["start", "file"], "is_array_file": is_array_file}},
        {"id": "end", "type": "end", "config": {"outputs": [{"variable": "text", "value_selector": ["de", "text"]}]}},
    ], [("start", "de"), ("de", "end")])
    assert validate_document(doc) == []
    runner = NodeRunner(ports(fetcher=http_fetcher(), **({"files": files} if files is not None else {})))
    return drive(doc, runner, {"file": value}, tenant_id=tenant_id)


def error_of(run: DrivenRun) -> tuple[str, str]:
    error = run.results["de"].error
    assert run.status == "failed" and error is not None
    return error.code, error.message


def test_a_pdf_url_is_fetched_through_the_safe_fetch_path_and_its_text_extracted(served: str) -> None:
    run = extract({"url": served + "/report.pdf"})
    assert run.status == "succeeded"
    text = run.outputs["text"]
    assert isinstance(text, str)
    assert text.index("Section 1") < text.index(page_marker(1)) < text.index("Section 2") < text.index(page_marker(2))
    assert run.results["de"].inputs == {"files": [{"source": "url", "url": served + "/report.pdf", "filename": "",
                                                   "mime_type": ""}]}


def test_an_inline_docx_is_extracted_and_its_bytes_are_never_recorded(tmp_path: Path) -> None:
    encoded = base64.b64encode(docx_bytes(tmp_path)).decode()
    run = extract({"content_base64": encoded, "filename": "memo.docx"})
    assert run.status == "succeeded"
    assert run.outputs["text"].split("\n\n")[:2] == ["Quarterly memo", "Revenue grew in every region."]
    assert "North" in run.outputs["text"] and "12%" in run.outputs["text"]
    assert run.results["de"].inputs == {"files": [{"source": "content_base64", "filename": "memo.docx",
                                                   "mime_type": ""}]}
    assert encoded[:40] not in repr(run.events)


def test_a_list_of_files_gives_one_text_per_file_in_order(s3: Any, served: str, tmp_path: Path) -> None:
    tenant = uuid.uuid4()
    key = f"tenants/{tenant}/workflow-files/notes.md"
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"# Notes\n\nShip the **release** on Friday.\n")
    files = S3FileStore(lambda name: boto3.client(name, region_name="us-east-1"), BUCKET)
    run = extract([{"s3_key": key}, {"url": served + "/report.pdf", "mime_type": "application/pdf"},
                   {"content_base64": base64.b64encode(b"plain words").decode(), "mime_type": "text/plain"}],
                  is_array_file=True, tenant_id=tenant, files=files)
    assert run.status == "succeeded"
    notes, report, plain = run.outputs["text"]
    assert notes.startswith("Notes") and "Ship the release on Friday." in notes
    assert page_marker(2) in report
    assert plain == "plain words"


def test_a_key_outside_the_tenants_prefix_is_refused_before_anything_is_read(s3: Any) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    secret = f"tenants/{other}/workflow-files/secret.txt"
    s3.put_object(Bucket=BUCKET, Key=secret, Body=b"other tenant's text")
    files = S3FileStore(lambda name: boto3.client(name, region_name="us-east-1"), BUCKET)
    for key in (secret, f"tenants/{tenant}/../{other}/workflow-files/secret.txt", "README.md"):
        code, message = error_of(extract({"s3_key": key}, tenant_id=tenant, files=files))
        assert code == "document_extractor_refused_key" and f"tenants/{tenant}/" in message
        assert "other tenant's text" not in message
    missing = extract({"s3_key": f"tenants/{tenant}/nothing.txt"}, tenant_id=tenant, files=files)
    assert error_of(missing)[0] == "document_extractor_file_not_found"
    # Without an uploads bucket, keys are not available (and say what to give instead).
    code, message = error_of(extract({"s3_key": f"tenants/{tenant}/nothing.txt"}, tenant_id=tenant))
    assert code == "document_extractor_files_unavailable" and "url or content_base64" in message


def test_urls_the_egress_policy_refuses_and_answers_outside_2xx_fail_the_node(served: str) -> None:
    code, message = error_of(extract({"url": "http://169.254.169.254/latest/meta-data/iam"}))
    assert code == "http_request_refused" and message.startswith("file 1 (http://169.254.169.254")
    code, message = error_of(extract({"url": served + "/gone.pdf"}))
    assert code == "document_extractor_fetch_failed" and "HTTP 404" in message
    assert error_of(extract({"url": "file:///etc/passwd"}))[0] == "document_extractor_invalid_file"


def test_files_that_are_no_documents_are_reported_with_the_parsers_codes(served: str) -> None:
    code, message = error_of(extract({"url": served + "/picture.png"}))
    assert code == "document_unsupported_type" and "picture.png" in message
    broken = extract({"content_base64": base64.b64encode(b"%PDF-1.7 not really").decode(),
                      "filename": "broken.pdf"})
    assert error_of(broken)[0] == "document_parse_failed"
    # An empty text file is no failure: its text is empty.
    assert extract({"content_base64": "", "mime_type": "text/plain"}).outputs["text"] == ""


@pytest.mark.parametrize(("value", "is_array_file", "message"), [
    ("https://example.com/a.pdf", False, "not a file reference"),
    ({"filename": "a.pdf"}, False, "exactly one of url, s3_key, content_base64"),
    ({"url": "https://example.com/a.pdf", "content_base64": "AAAA"}, False, "(it has url, content_base64)"),
    ({"content_base64": "not base64!", "filename": "a.txt"}, False, "not base64"),
    ({"url": 42}, False, "url must be a string"),
    ([{"content_base64": "", "filename": "a.txt"}], False, "set is_array_file"),
    ({"content_base64": "", "filename": "a.txt"}, True, "unset is_array_file"),
    (None, False, "has no value"),
])
def test_values_that_are_no_file_references_say_what_a_file_is(value: Any, is_array_file: bool,
                                                               message: str) -> None:
    code, text = error_of(extract(value, is_array_file=is_array_file))
    assert code == "document_extractor_invalid_file" and message in text


def test_too_many_files_are_refused_and_an_error_strategy_handles_any_failure() -> None:
    many = [{"content_base64": "", "mime_type": "text/plain"}] * 21
    assert error_of(extract(many, is_array_file=True))[0] == "document_extractor_too_many_files"
    handled = extract({"content_base64": "%%%"}, strategy="default_value")
    assert handled.status == "succeeded"
    assert handled.results["de"].outputs["error_type"] == "document_extractor_invalid_file"
