"""A document through the whole local runtime, as a client sees it: presigned upload over
HTTP to (moto's) S3, the S3 event through SQS to the local poller, indexing with the local
model, then a hybrid search."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import RunningRuntime
from tests.support.documents import make_pdf


def _wait_indexed(client: httpx.Client, path: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        document: dict[str, Any] = client.get(path, headers=headers).json()["data"]
        if document["status"] in ("indexed", "failed"):
            return document
        assert time.monotonic() < deadline, document
        time.sleep(0.25)


def test_uploaded_pdf_is_indexed_and_searchable(runtime: RunningRuntime, tmp_path: Path) -> None:
    pdf = make_pdf(tmp_path / "manual.pdf", pages=4)
    with httpx.Client(base_url=runtime.url, timeout=60) as client:
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = client.post("/api/v1/tenants", json={"name": "e2e-kb"}, headers=admin).json()["data"]
        headers = {"Authorization": f"Bearer {tenant['owner_token']}"}
        kb = client.post("/api/v1/knowledge-bases", json={"name": "manuals"}, headers=headers).json()["data"]
        created = client.post(f"/api/v1/knowledge-bases/{kb['id']}/documents", headers=headers, json={
            "name": "manual.pdf", "content_type": "application/pdf", "size": pdf.stat().st_size}).json()["data"]
        form = created["upload"]
        with pdf.open("rb") as handle:
            uploaded = httpx.post(form["url"], data=form["fields"],
                                  files={"file": ("manual.pdf", handle, "application/pdf")}, timeout=30)
        assert uploaded.status_code in (200, 204), uploaded.text
        document = _wait_indexed(client, f"/api/v1/knowledge-bases/{kb['id']}/documents/{created['id']}", headers)
        assert document["status"] == "indexed", document["error"]
        assert document["pages"] == 4 and document["progress"]["percent"] == 100.0
        inline = client.post(f"/api/v1/knowledge-bases/{kb['id']}/documents", headers=headers, json={
            "name": "refunds.md", "text": "# Refunds\n\nRefunds are paid back within five working days."}).json()
        _wait_indexed(client, f"/api/v1/knowledge-bases/{kb['id']}/documents/{inline['data']['id']}", headers)
        found = client.post(f"/api/v1/knowledge-bases/{kb['id']}/retrieve", headers=headers,
                            json={"query": "how long until my refund is paid", "mode": "hybrid", "top_k": 3})
        items = found.json()["data"]["items"]
        assert items[0]["document_name"] == "refunds.md"
        assert items[0]["score_type"] == "hybrid" and 0 < items[0]["score"] <= 1
