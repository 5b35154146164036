"""Settings a function needs follow from its catalog entry, and a deployed function missing
one fails when it starts, naming the variable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.catalog import FUNCTIONS, by_name
from infra.local.invoker import LocalContext
from shared.catalog import (
    DATABASE,
    OPENSEARCH,
    REDIS,
    Access,
    Function,
    StepFunctionsTask,
    bucket,
    invoke,
    queue,
    state_machine,
)
from shared.config import (
    MissingSettings,
    Settings,
    access_settings,
    check_function_settings,
    check_settings,
    required_settings,
    reset_settings,
)
from shared.handler import powertools_handler

PROBE = Function("probe", "functions.maintenance.purge_table", "maintenance", StepFunctionsTask("purge"),
                 access=(DATABASE, REDIS, bucket("uploads", "read"), state_machine("knowledge-base-delete", "start"),
                         queue("ingest", "send"), OPENSEARCH))


def _deployed(**values: str) -> Settings:
    return Settings(stratus_runtime="lambda", **values)  # type: ignore[arg-type]


def test_the_mapping_names_the_variables_each_access_needs() -> None:
    assert [r.variable for r in required_settings(PROBE)] == [
        "DATABASE_SECRET_ARN", "DATABASE_HOST", "DATABASE_NAME", "REDIS_URL", "REDIS_USER", "REDIS_SECRET_ARN",
        "UPLOADS_BUCKET",
        "KNOWLEDGE_BASE_DELETE_STATE_MACHINE_ARN", "INGEST_QUEUE_URL", "VECTOR_STORE", "OPENSEARCH_URL",
        "OPENSEARCH_SIGV4_SERVICE"]
    with pytest.raises(ValueError):
        access_settings(Access("teleport"))


def test_invoking_a_function_needs_its_name() -> None:
    assert [r.variable for r in access_settings(invoke("workflow-code"))] == ["WORKFLOW_CODE_FUNCTION_NAME"]
    for caller in ("workflow-branch",):
        assert "WORKFLOW_CODE_FUNCTION_NAME" in {r.variable for r in required_settings(by_name()[caller])}


def test_every_catalog_function_needs_only_settings_that_exist() -> None:
    fields = set(Settings.model_fields)
    for fn in FUNCTIONS:
        for required in required_settings(fn):
            assert required.field in fields, (fn.name, required.variable)
    # And what the catalog reads is really required: the purge starter needs its machine.
    assert "PURGE_STATE_MACHINE_ARN" in {r.variable for r in required_settings(by_name()["purge-start"])}


def test_a_missing_variable_is_named() -> None:
    complete = {"database_secret_arn": "arn:s", "database_host": "proxy", "redis_url": "rediss://r:6379",
                "redis_user": "stratus-app", "redis_secret_arn": "arn:r",
                "uploads_bucket": "b", "knowledge_base_delete_state_machine_arn": "arn:m",
                "ingest_queue_url": "https://q"}
    check_settings(PROBE, _deployed(**complete))
    for field in complete:
        partial = {k: v for k, v in complete.items() if k != field}
        with pytest.raises(MissingSettings) as info:
            check_settings(PROBE, _deployed(**partial))
        assert info.value.variables == [field.upper()]
        assert field.upper() in str(info.value) and "probe" in str(info.value)
    # OPENSEARCH_URL only once the deployment chose OpenSearch as the vector store.
    with pytest.raises(MissingSettings) as info:
        check_settings(PROBE, _deployed(**complete, vector_store="opensearch"))
    assert info.value.variables == ["OPENSEARCH_URL"]
    check_settings(PROBE, _deployed(**complete, vector_store="opensearch", opensearch_url="https://os"))


@pytest.fixture
def deployed_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("STRATUS_RUNTIME", "lambda")
    for name in ("DATABASE_URL", "DATABASE_SECRET_ARN", "DATABASE_HOST", "PURGE_STATE_MACHINE_ARN"):
        monkeypatch.delenv(name, raising=False)
    reset_settings()
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def test_a_deployed_function_missing_a_setting_fails_at_start_naming_it(deployed_env: pytest.MonkeyPatch) -> None:
    ran: list[object] = []
    # A fresh entry point, as a new container has (a handler module's own is built once per process).
    handler = powertools_handler(lambda event, context: ran.append(event))
    deployed_env.setenv("STRATUS_FUNCTION", "purge-start")
    deployed_env.setenv("DATABASE_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:db")
    deployed_env.setenv("DATABASE_HOST", "proxy.internal")
    reset_settings()
    with pytest.raises(MissingSettings, match="PURGE_STATE_MACHINE_ARN") as info:
        handler({}, LocalContext("purge-start", 256, 10))
    assert info.value.variables == ["PURGE_STATE_MACHINE_ARN"]
    # Still failing on the next invocation: nothing was cached past the failed check.
    with pytest.raises(MissingSettings):
        handler({}, LocalContext("purge-start", 256, 10))
    assert ran == [], "the handler never ran"
    deployed_env.setenv("PURGE_STATE_MACHINE_ARN", "arn:aws:states:us-east-1:1:stateMachine:purge")
    reset_settings()
    handler({"n": 1}, LocalContext("purge-start", 256, 10))
    assert ran == [{"n": 1}]


def test_the_check_needs_to_know_which_function_it_is(deployed_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingSettings, match="STRATUS_FUNCTION"):
        check_function_settings()
    deployed_env.setenv("STRATUS_FUNCTION", "no-such-function")
    reset_settings()
    with pytest.raises(LookupError, match="no-such-function"):
        check_function_settings()
    deployed_env.setenv("STRATUS_FUNCTION", "default-route")
    reset_settings()
    # An edge-facing function needs only the origin secret (docs/adr/0047).
    with pytest.raises(MissingSettings, match="ORIGIN_SECRET_ARN"):
        check_function_settings()
    deployed_env.setenv("ORIGIN_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:1:secret:origin")
    reset_settings()
    check_function_settings()


def test_the_local_runtime_checks_nothing() -> None:
    # Embedded defaults stand in (DATABASE_URL, the in-process cache, inline ingestion).
    check_function_settings(Settings(stratus_runtime="local", stratus_function="purge-start"))


def test_settings_read_by_name_exist() -> None:
    # The model defaults are read as default_<field> (shared/models): not dead settings.
    from shared.models.repository import DEFAULT_FIELDS

    assert {f"default_{field}" for field in DEFAULT_FIELDS} <= set(Settings.model_fields)
    assert "stratus_stage" not in Settings.model_fields


def test_a_deployed_streaming_app_missing_a_setting_fails_its_startup(deployed_env: pytest.MonkeyPatch) -> None:
    import asyncio

    from functions.chat.app import app

    sent: list[dict[str, object]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, object]:
        return next(incoming)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "DATABASE_" in str(sent[0]["message"]) and "chat" in str(sent[0]["message"])
