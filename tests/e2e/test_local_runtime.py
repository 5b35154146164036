"""End to end: the local runtime started as ``make dev`` starts it, used with a real HTTP
client, stopped with Ctrl-C, and started again on the same data."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.conftest import ROOT, RunningRuntime, start_runtime


def test_start_serves_api_and_writes_local_json(runtime: RunningRuntime) -> None:
    local_json = runtime.state_dir / "local.json"
    info = json.loads(local_json.read_text())
    assert set(info) == {"url", "admin_token"} and info["url"].startswith("http://127.0.0.1:")
    assert stat.S_IMODE(local_json.stat().st_mode) == 0o600
    assert runtime.admin_token.startswith("pat_")
    with httpx.Client(base_url=runtime.url, timeout=30) as client:
        health = client.get("/health").json()
        assert health["data"]["database"] == "ok"
        created = client.post("/api/v1/tenants", json={"name": "e2e"},
                              headers={"Authorization": f"Bearer {runtime.admin_token}"})
        assert created.status_code == 201
        owner = {"Authorization": f"Bearer {created.json()['data']['owner_token']}"}
        assert client.get("/api/v1/tenants/current", headers=owner).json()["data"]["name"] == "e2e"
        assert client.get("/api/v1/openapi.json").json()["openapi"] == "3.1.0"
        # The model catalog is loaded at start; with no provider key the chat models say so.
        models = {m["name"]: m for m in client.get("/api/v1/models?limit=100", headers=owner).json()["data"]}
        assert models["all-minilm-l6-v2"]["configured"] is True
        test = client.post("/api/v1/models/gpt-4o-mini/test", headers=owner).json()["data"]
        assert test["ok"] is False and test["error"]["code"] == "model_not_configured"
        missing = client.get("/api/v1/nope")
        assert missing.status_code == 404 and missing.json()["code"] == "biz_route_not_found"


def test_restart_reuses_data_and_token(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_runtime(state)
    try:
        with httpx.Client(base_url=first.url, timeout=30) as client:
            created = client.post("/api/v1/tenants", json={"name": "kept"},
                                  headers={"Authorization": f"Bearer {first.admin_token}"}).json()["data"]
    finally:
        assert first.stop() == 0, first.log.read_text()[-4000:]
    # Ctrl-C stopped the embedded PostgreSQL too.
    assert not (state / "pg" / "postmaster.pid").exists()
    second = start_runtime(state)
    try:
        assert second.admin_token == first.admin_token
        with httpx.Client(base_url=second.url, timeout=30) as client:
            again = client.get("/api/v1/tenants/current",
                               headers={"Authorization": f"Bearer {created['owner_token']}"})
            assert again.status_code == 200 and again.json()["data"]["id"] == created["tenant"]["id"]
    finally:
        assert second.stop() == 0


def test_admin_token_from_environment(tmp_path: Path) -> None:
    token = "pat_e2e_" + "k" * 32
    running = start_runtime(tmp_path / "state", STRATUS_ADMIN_TOKEN=token)
    try:
        assert running.admin_token == token
        response = httpx.post(f"{running.url}/api/v1/tenants", json={"name": "env"},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert response.status_code == 201
    finally:
        running.stop()


def test_make_invoke_runs_a_catalog_function(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "infra.local.invoke", "purge-table",
                             "events/sfn_purge_table_task.json"], cwd=ROOT, capture_output=True, text=True,
                            timeout=180, env={"STRATUS_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin",
                                              "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]
    output = json.loads(result.stdout)
    assert output["table"] == "api_keys" and output["done"] is True and output["deleted"] == 0
    unknown = subprocess.run([sys.executable, "-m", "infra.local.invoke", "no-such-function"], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no function named" in unknown.stderr


def _postgres_serving(pgdata: Path) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and str(pgdata) in " ".join(proc.info["cmdline"] or []):
            found.append(proc.pid)
    return found


def test_start_and_stop_survive_a_crash(tmp_path: Path) -> None:
    state = tmp_path / "state"
    crashed = start_runtime(state)
    crashed.proc.kill()  # kill -9: no cleanup at all, PostgreSQL keeps running
    crashed.proc.wait(30)
    assert _postgres_serving(state / "pg")
    again = start_runtime(state)
    try:
        with httpx.Client(base_url=again.url, timeout=30) as client:
            assert client.get("/health").json()["data"]["database"] == "ok"
    finally:
        assert again.stop() == 0, again.log.read_text()[-4000:]
    # Ctrl-C after the crash stops PostgreSQL too (the dead process's handle no longer counts).
    assert not _postgres_serving(state / "pg")
    assert not (state / "pg" / "postmaster.pid").exists()


def test_wrong_methods_answer_405_and_request_ids_have_one_shape(runtime: RunningRuntime) -> None:
    import re

    shape = re.compile(r"^[A-Za-z0-9+/]{16}$")
    with httpx.Client(base_url=runtime.url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        owner = {"Authorization": "Bearer " + client.post("/api/v1/tenants", json={"name": "e2e-ids"},
                                                          headers=admin).json()["data"]["owner_token"]}
        # The chat function's app (a function URL in AWS) answers as the API Gateway routes do.
        for path in ("/api/v1/chat", "/api/v1/members"):
            wrong = client.request("TRACE", path, headers=owner)
            assert wrong.status_code == 405 and wrong.headers["allow"], (path, wrong.text)
        chat = client.post("/api/v1/chat", json={}, headers=owner)
        api = client.get("/api/v1/tenants/current", headers=owner)
        assert chat.status_code == 422 and api.status_code == 200
        assert shape.match(chat.headers["x-request-id"]) and shape.match(api.headers["x-request-id"])


def test_quiet_start_204s_and_upload_forms_outlive_a_restart(tmp_path: Path) -> None:
    import re

    from tests.support.documents import make_pdf

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    first = start_runtime(state, LOG_LEVEL="INFO")
    try:
        with httpx.Client(base_url=first.url, timeout=60) as client:
            admin = {"Authorization": f"Bearer {first.admin_token}"}
            tenant = client.post("/api/v1/tenants", json={"name": "e2e-restart"}, headers=admin).json()["data"]
            owner = {"Authorization": f"Bearer {tenant['owner_token']}"}
            key = client.post("/api/v1/api-keys", json={"name": "gone"}, headers=owner).json()["data"]
            deleted = client.delete(f"/api/v1/api-keys/{key['id']}", headers=owner)
            assert deleted.status_code == 204 and deleted.content == b""
            assert "content-type" not in deleted.headers
            kb = client.post("/api/v1/knowledge-bases", json={"name": "kept"}, headers=owner).json()["data"]
            pdf = make_pdf(tmp_path / "late.pdf", pages=1)
            created = client.post(f"/api/v1/knowledge-bases/{kb['id']}/documents", headers=owner, json={
                "name": "late.pdf", "content_type": "application/pdf", "size": pdf.stat().st_size}).json()["data"]
    finally:
        assert first.stop() == 0, first.log.read_text()[-4000:]
    log = first.log.read_text()
    # No traceback (h11 refused the 204's body), no warning a user can do nothing about.
    assert "Traceback" not in log and "RuntimeDirWarning" not in log, log[-4000:]
    assert "No application metrics to publish" not in log, log[-4000:]
    assert re.search(r"applied migration \d+ \w+", log), log[:2000]
    # platformdirs took the state directory as the runtime directory (it was 0700 when read; as
    # root, embedded PostgreSQL opens it to its server user afterwards).
    assert (state / "python_PostgresServer").is_dir()
    second = start_runtime(state)
    try:
        # The form fetched before the restart still reaches S3: moto kept its port.
        form = created["upload"]
        with pdf.open("rb") as handle:
            uploaded = httpx.post(form["url"], data=form["fields"],
                                  files={"file": ("late.pdf", handle, "application/pdf")}, timeout=30)
        assert uploaded.status_code in (200, 204), uploaded.text
    finally:
        assert second.stop() == 0
