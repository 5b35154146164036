"""The pure parts of agent variables, files and the Coze knowledge translators: prompt precedence
(request inputs > stored value > default), publish checks, sys.user_variables in chatflows, file
names and types, file ids in run inputs, and Coze's dataset/document mappings."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.agents.config import AgentConfig, render_system_prompt, resolve_user_variables, user_variable_problems
from shared.errors import NotFound, ValidationFailed
from shared.facades.coze import datasets, variables, wire
from shared.files.contract import named_file_id
from shared.files.service import allowed, clean_name, media_type
from shared.workflows.definition import WorkflowDocument
from shared.workflows.engine.runner import ChatContext, RunContext, run_pool
from shared.workflows.errors import WorkflowInputInvalid
from shared.workflows.file_inputs import resolve_file_inputs
from shared.workflows.validation import validate_document


def config(**fields: Any) -> AgentConfig:
    return AgentConfig.model_validate({
        "system_prompt": "{{greeting}} {{nickname}} from {{city}}",
        "variables": [{"name": "greeting", "default": "Hello"}],
        "user_variables": [{"name": "nickname", "default": "friend"}, {"name": "city"}], **fields})


# Agent variables --------------------------------------------------------------------------------
def test_prompt_precedence_is_inputs_then_stored_then_default() -> None:
    agent = config()
    assert render_system_prompt(agent) == "Hello friend from "
    assert render_system_prompt(agent, {}, {"nickname": "Ali", "city": "Lyon"}) == "Hello Ali from Lyon"
    assert render_system_prompt(agent, {"city": "Oslo", "nickname": ""}, {"nickname": "Ali", "city": "Lyon"}) == \
        "Hello Ali from Oslo"
    # A stored value is inserted as it is: no second expansion.
    assert render_system_prompt(agent, None, {"nickname": "{{city}}"}) == "Hello {{city}} from "
    assert resolve_user_variables(agent, {"city": 7}, {"gone": "x"}) == {"nickname": "friend", "city": "7"}


def test_bad_inputs_for_agent_variables_are_located() -> None:
    for value, kind in (({"a": 1}, "type_error"), (True, "type_error"), ("x" * 10_001, "string_too_long")):
        with pytest.raises(ValidationFailed) as caught:
            resolve_user_variables(config(), {"city": value})
        assert caught.value.details["fields"][0] == {"field": "inputs.city", "type": kind,
                                                     "message": caught.value.details["fields"][0]["message"]}


def test_publish_problems_name_the_declaration() -> None:
    clash = config(user_variables=[{"name": "greeting"}, {"name": "city"}, {"name": "city"}, {"name": "nickname"}])
    assert [(p["field"], p["type"]) for p in user_variable_problems(clash)] == [
        ("config.user_variables[0].name", "duplicate"), ("config.user_variables[2].name", "duplicate")]
    assert user_variable_problems(config()) == []
    with pytest.raises(ValueError, match="user_variables"):
        AgentConfig.model_validate({"system_prompt": "{{mood}}"})


def test_chatflows_read_user_variables_as_sys() -> None:
    document = WorkflowDocument.model_validate({"mode": "chatflow", "nodes": [
        {"id": "start", "type": "start"},
        {"id": "a", "type": "answer", "config": {"answer": "Hi {{#sys.user_variables.nickname#}}"}}],
        "edges": [{"source": "start", "target": "a"}]})
    assert validate_document(document) == []
    workflow = document.model_copy(update={"mode": "workflow"})
    assert "unknown_sys_variable" in [p.code for p in validate_document(workflow)]
    context = RunContext(tenant_id=uuid.uuid4(), run_id="r", workflow_id="w", version="1", user_id="alice",
                         started_at=datetime.now(UTC), chat=ChatContext(user_variables={"nickname": "Ali"}))
    pool = run_pool(context, document)
    assert pool.render("Hi {{#sys.user_variables.nickname#}}{{#sys.user_variables.none#}}") == "Hi Ali"
    assert run_pool(context.__class__(**{**context.__dict__, "chat": ChatContext()}), document).get(
        ["sys", "user_variables"]) == {}


# Files --------------------------------------------------------------------------------------------
def test_names_and_types() -> None:
    assert clean_name("../../etc/pass\x00wd.txt") == "passwd.txt" and clean_name("C:\\x\\") == "file"
    assert media_type(None, "a.md") == "text/markdown" and media_type("application/octet-stream", "a.pdf") == \
        "application/pdf"
    assert media_type("image/PNG; q=1", "a.txt") == "image/png" and media_type(None, "blob") == \
        "application/octet-stream"
    assert allowed("text/csv") and allowed("application/pdf") and allowed("video/mp4")
    assert not allowed("application/octet-stream") and not allowed("application/x-msdownload")


def test_file_ids_in_run_inputs() -> None:
    file_id = str(uuid.uuid4())
    assert named_file_id({"file_id": file_id}) == file_id
    assert named_file_id(json.dumps({"file_id": file_id})) == file_id
    assert named_file_id({"upload_file_id": file_id, "transfer_method": "local_file"}) == file_id
    # A file reference of its own (a URL, a key) is left to the engine.
    assert named_file_id({"file_id": file_id, "url": "https://x"}) is None
    assert named_file_id("{not json") is None and named_file_id(3) is None


class Files:
    def __init__(self, known: uuid.UUID) -> None:
        self.known = known

    def reference(self, tenant_id: uuid.UUID, file_id: uuid.UUID) -> dict[str, Any]:
        if file_id != self.known:
            raise NotFound()
        return {"file_id": str(file_id), "s3_key": f"tenants/{tenant_id}/files/{file_id}/content",
                "filename": "a.txt", "mime_type": "text/plain", "size": 1}


def test_run_inputs_resolve_file_ids_and_locate_unknown_ones() -> None:
    known, tenant = uuid.uuid4(), uuid.uuid4()
    document = WorkflowDocument.model_validate({"nodes": [
        {"id": "start", "type": "start", "config": {"variables": [
            {"variable": "one", "type": "object"}, {"variable": "many", "type": "array[object]"},
            {"variable": "text", "type": "string"}]}},
        {"id": "end", "type": "end"}], "edges": [{"source": "start", "target": "end"}]})
    resolved = resolve_file_inputs(document, {"one": {"file_id": str(known)}, "many": [{"file_id": str(known)}],
                                              "text": str(known)}, tenant, lambda: Files(known))
    assert resolved["one"]["s3_key"] == f"tenants/{tenant}/files/{known}/content"
    assert resolved["many"][0]["filename"] == "a.txt" and resolved["text"] == str(known)
    with pytest.raises(WorkflowInputInvalid) as caught:
        resolve_file_inputs(document, {"one": {"file_id": "nope"}, "many": [{"file_id": str(uuid.uuid4())}]},
                            tenant, lambda: Files(known))
    assert [f["field"] for f in caught.value.details["fields"]] == ["inputs.one", "inputs.many[0]"]
    assert resolve_file_inputs(document, "not a mapping", tenant, None) == "not a mapping"


# Coze translators -------------------------------------------------------------------------------
def test_coze_variables_need_a_bot() -> None:
    assert variables.bot("b", None) == "b"
    for app_id, code in (("a", "coze_app_unsupported"), (None, "coze_bot_id_missing")):
        with pytest.raises(wire.CozeError) as caught:
            variables.bot(None, app_id)
        assert (caught.value.coze_code, caught.value.code) == (wire.INVALID_PARAM, code)


def test_coze_document_statuses_and_chunking() -> None:
    assert [datasets.coze_status(s) for s in ("pending_upload", "uploaded", "parsing", "chunking", "embedding",
                                               "indexed", "failed")] == [0, 0, 0, 0, 0, 1, 9]
    assert datasets.chunking_of(None) is None
    assert datasets.chunking_of(datasets.CozeChunkStrategy(chunk_type=0)) is None
    custom = datasets.chunking_of(datasets.CozeChunkStrategy(chunk_type=1, max_tokens=300, separator="\n\n",
                                                             remove_extra_spaces=True))
    assert custom is not None and (custom.chunk_size, custom.separators, custom.normalize_whitespace) == (
        300, ["\n\n", ""], True)
    with pytest.raises(wire.CozeError):
        datasets.chunking_of(datasets.CozeChunkStrategy(chunk_type=1, max_tokens=300))


def test_coze_document_sources() -> None:
    principal: Any = None
    text = datasets.CozeDocumentBase(name="notes", source_info=datasets.CozeSourceInfo(
        file_base64=base64.b64encode(b"hello").decode(), file_type="md"))
    assert datasets._content(principal, text, 0) == ("notes.md", "text/markdown", b"hello", "base64")
    for info, code in (({"web_url": "https://x", "document_source": 1}, "coze_web_document_unsupported"),
                       ({"file_base64": "%%", "file_type": "txt"}, "coze_document_base64_invalid"),
                       ({}, "coze_document_source_missing")):
        with pytest.raises(wire.CozeError) as caught:
            datasets._content(principal, datasets.CozeDocumentBase(
                name="x", source_info=datasets.CozeSourceInfo.model_validate(info)), 0)
        assert caught.value.code == code
    with pytest.raises(wire.CozeError):
        datasets._content(principal, datasets.CozeDocumentBase(
            name="x", source_info=datasets.CozeSourceInfo(file_base64="aGk=", file_type="txt"),
            update_rule=datasets.CozeUpdateRule(update_type=1, update_interval=24)), 0)


def test_the_upload_routes_take_what_the_service_allows() -> None:
    from functions.catalog import by_name
    from functions.catalog.files import MAX_UPLOAD_BODY_BYTES
    from shared.catalog import Http
    from shared.files import service

    assert MAX_UPLOAD_BODY_BYTES == service.MAX_UPLOAD_BODY_BYTES > service.MAX_FILE_BYTES
    for name in ("files-upload", "coze-files-upload"):
        route = by_name()[name].trigger
        assert isinstance(route, Http) and route.body == "multipart"
        assert route.max_body_bytes == MAX_UPLOAD_BODY_BYTES
