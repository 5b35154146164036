"""The concurrency and connection budget (docs/adr/0047-concurrency-budget-and-side-doors.md), on the
synthesized templates: reserved concurrency per function class, the ingestion queue's
MaximumConcurrency, the RDS Proxy's limits, the budget sum, HTTP functions at most 28 s."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from functions import catalog
from infra.app import build_app
from infra.capacity import (
    DEFAULT_RESERVED,
    HTTP_MAX_TIMEOUT_S,
    Budget,
    BudgetExceeded,
    aurora_max_connections,
    check_budget,
    function_class,
    uses_database,
    validate_http_timeouts,
)
from infra.config import StratusConfig
from shared.catalog import DATABASE, DATABASE_ADMIN, Function, Http, Queue, Schedule, StepFunctionsTask
from tests.infra.support import TEST_CONTEXT, Synth, ref_logical_id


def _proxy_pool(synth: Synth) -> dict[str, Any]:
    (group,) = synth.templates["root"].find_resources("AWS::RDS::DBProxyTargetGroup").values()
    return dict(group["Properties"]["ConnectionPoolConfigurationInfo"])


def _proxy(synth: Synth) -> dict[str, Any]:
    (proxy,) = synth.templates["root"].find_resources("AWS::RDS::DBProxy").values()
    return dict(proxy["Properties"])


# --- On the synthesized templates ----------------------------------------------------------------


@pytest.mark.parametrize("fn", catalog.FUNCTIONS, ids=lambda fn: fn.name)
def test_each_function_has_its_class_reserved_concurrency(synth: Synth, fn: Function) -> None:
    props = synth.function(fn.name).props
    assert props.get("ReservedConcurrentExecutions") == StratusConfig().budget.reserved_for(fn)


def test_the_classes_the_issue_names_are_reserved(synth: Synth) -> None:
    for fn in catalog.FUNCTIONS:
        if function_class(fn) in {"streaming", "ingestion", "embedding", "workflow"}:
            assert synth.function(fn.name).props["ReservedConcurrentExecutions"] >= 1, fn.name
    # The function URL functions among them.
    assert all(synth.function(fn.name).props.get("ReservedConcurrentExecutions")
               for fn in catalog.streaming_functions())


def test_the_synthesized_budget_fits_the_proxy_and_the_database(synth: Synth) -> None:
    """The formula of ADR 0047, from the templates alone: every database container's reserved
    concurrency (one connection each) plus the HTTP allowance ≤ the proxy's share ≤ max_connections."""
    config = StratusConfig()
    budget = config.budget
    percent = _proxy_pool(synth)["MaxConnectionsPercent"]
    assert percent == config.proxy_max_connections_percent
    max_connections = aurora_max_connections(config.aurora_min_acu, config.aurora_max_acu)
    proxy_max = math.floor(max_connections * percent / 100)
    through_proxy = direct = 0
    for name, (deployed,) in synth.functions().items():
        env = deployed.env
        reserved = deployed.props.get("ReservedConcurrentExecutions")
        if "DATABASE_ADMIN_SECRET_ARN" in env:
            direct += reserved
        elif "DATABASE_HOST" in env:
            if reserved is None:
                # Unreserved database functions are the HTTP class, counted by its allowance.
                assert function_class(catalog.by_name()[name]) == "http", name
                continue
            through_proxy += reserved
    through_proxy += budget.http_allowance
    assert through_proxy <= proxy_max <= max_connections
    assert through_proxy + direct <= max_connections
    assert through_proxy == check_budget(catalog.FUNCTIONS, budget).proxy_connections


def test_proxy_borrow_timeout_is_below_every_database_function_timeout(synth: Synth) -> None:
    borrow = _proxy_pool(synth)["ConnectionBorrowTimeout"]
    timeouts = [deployed.props["Timeout"] for (deployed,) in synth.functions().values()
                if "DATABASE_HOST" in deployed.env]
    assert timeouts and borrow < min(timeouts)
    assert borrow < 5, "below the client's connect timeout (db_connect_timeout_s)"
    assert _proxy_pool(synth)["MaxIdleConnectionsPercent"] <= _proxy_pool(synth)["MaxConnectionsPercent"]


def test_proxy_drops_idle_clients_sooner(synth: Synth) -> None:
    # Frozen containers' pinned sessions are given back after 5 minutes, not 30.
    assert _proxy(synth)["IdleClientTimeout"] == 300


def test_ingestion_queue_source_has_maximum_concurrency(synth: Synth) -> None:
    consumers = [fn for fn in catalog.FUNCTIONS if isinstance(fn.trigger, Queue)]
    assert consumers
    for fn in consumers:
        deployed = synth.function(fn.name)
        mappings = [m["Properties"] for m in synth.templates[deployed.stack].find_resources(
            "AWS::Lambda::EventSourceMapping").values() if ref_logical_id(m["Properties"]["FunctionName"])
            == deployed.logical_id]
        assert len(mappings) == 1
        maximum = mappings[0]["ScalingConfig"]["MaximumConcurrency"]
        assert 2 <= maximum <= deployed.props["ReservedConcurrentExecutions"]


def _integrated_functions(synth: Synth) -> set[str]:
    """Catalog names of the functions API Gateway invokes: route integrations and the authorizer."""
    by_logical = {(d.stack, d.logical_id): name for name, (d,) in synth.functions().items()}
    found = set()
    for stack, _, integration in synth.resources("AWS::ApiGatewayV2::Integration"):
        target = ref_logical_id(integration["Properties"]["IntegrationUri"])
        if (stack, target) in by_logical:
            found.add(by_logical[(stack, target)])
    for stack, _, authorizer in synth.resources("AWS::ApiGatewayV2::Authorizer"):
        uri = authorizer["Properties"]["AuthorizerUri"]
        for part in uri["Fn::Join"][1]:
            if (stack, ref_logical_id(part)) in by_logical:
                found.add(by_logical[(stack, ref_logical_id(part))])
    return found


def test_every_api_gateway_integrated_function_times_out_within_28_s(synth: Synth) -> None:
    integrated = _integrated_functions(synth)
    expected = {fn.name for fn in catalog.http_functions()} | {"default-route", "authorizer"}
    assert integrated == expected
    for name in integrated:
        assert synth.function(name).props["Timeout"] <= HTTP_MAX_TIMEOUT_S, name


# --- The check itself ----------------------------------------------------------------------------


def _fn(name: str, trigger: Any, *, database: bool = True, timeout_s: int = 10, domain: str = "knowledge",
        layers: tuple[str, ...] = ("base",)) -> Function:
    return Function(name, f"functions.x.{name}", domain, trigger, timeout_s=timeout_s, layers=layers,
                    access=(DATABASE,) if database else ())


def test_the_shipped_catalog_fits_the_default_budget() -> None:
    usage = check_budget(catalog.FUNCTIONS, StratusConfig().budget)
    assert usage.proxy_connections <= StratusConfig().budget.proxy_max_connections


def test_a_budget_that_exceeds_the_proxy_is_refused() -> None:
    functions = [_fn(f"step-{i}", StepFunctionsTask("m")) for i in range(30)]
    budget = Budget(database_max_connections=100, proxy_max_connections_percent=80, http_allowance=10)
    # 30 step functions x 5 reserved + 10 = 160 connections > 80.
    with pytest.raises(BudgetExceeded, match=r"160 connections.*over the proxy's 80"):
        check_budget(functions, budget)
    assert check_budget(functions[:10], budget).proxy_connections == 60


def test_a_class_raised_past_the_database_on_the_command_line_fails() -> None:
    config = StratusConfig(concurrency=(("streaming", 400),))
    with pytest.raises(BudgetExceeded, match="over the proxy"):
        check_budget(catalog.FUNCTIONS, config.budget)


def test_a_database_function_without_reserved_concurrency_is_refused() -> None:
    invoked_with_db = Function("x", "functions.x.x", "tools", catalog.Invoked(), access=(DATABASE,))
    with pytest.raises(BudgetExceeded, match="reaches the database without reserved concurrency"):
        check_budget([invoked_with_db], Budget())


def test_the_account_concurrency_bounds_the_reservations() -> None:
    functions = [_fn(f"s-{i}", Schedule("rate(1 hour)"), database=False) for i in range(10)]
    with pytest.raises(BudgetExceeded, match="the account's 400"):
        check_budget(functions, Budget(account_concurrency=400, http_allowance=290))


def test_migrations_count_against_the_database_not_the_proxy() -> None:
    migrate = Function("m", "functions.x.m", "platform", catalog.Deploy(), access=(DATABASE_ADMIN,))
    usage = check_budget([migrate], Budget())
    assert (usage.direct_connections, usage.proxy_connections) == (1, Budget().http_allowance)


def test_classes_come_from_triggers_so_later_functions_need_no_edit() -> None:
    assert function_class(_fn("a", Http("POST", "/coze/v1/x"))) == "http"
    assert function_class(_fn("b", StepFunctionsTask("ingest"), layers=("base", "embed"))) == "embedding"
    assert function_class(_fn("c", StepFunctionsTask("workflow-run"), domain="workflows")) == "workflow"
    assert function_class(_fn("d", Queue("documents"))) == "ingestion"
    assert {function_class(fn) for fn in catalog.FUNCTIONS} <= set(DEFAULT_RESERVED)
    # Today's database functions of every class but http are all reserved.
    assert all(StratusConfig().budget.reserved_for(fn) for fn in catalog.FUNCTIONS
               if uses_database(fn) and function_class(fn) != "http")


def test_unknown_class_override_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown class 'chatt'"):
        StratusConfig(concurrency=(("chatt", 5),))
    with pytest.raises(ValueError, match="http_allowance"):
        StratusConfig(concurrency=(("http", 5),))


def test_http_functions_over_28_s_are_refused() -> None:
    with pytest.raises(ValueError, match=r"slow \(29 s\)"):
        validate_http_timeouts([_fn("slow", Http("POST", "/api/v1/slow"), timeout_s=29)])
    validate_http_timeouts([_fn("ok", Http("POST", "/api/v1/ok"), timeout_s=28),
                            _fn("step", StepFunctionsTask("m"), timeout_s=900)])


def test_aurora_max_connections_formula() -> None:
    assert aurora_max_connections(0.5, 4) == 901
    assert aurora_max_connections(0.5, 64) == 2000  # capped at 2000 with a 0.5 ACU minimum
    assert aurora_max_connections(2, 64) == 5000


def test_a_synth_whose_budget_exceeds_fails(tmp_path: Path) -> None:
    """The stack refuses the stage before building anything (the check runs first)."""
    with pytest.raises(BudgetExceeded, match="over the proxy's 720"):
        build_app({**TEST_CONTEXT, "concurrency": {"streaming": 400}}, outdir=str(tmp_path))
    with pytest.raises(BudgetExceeded, match="max_connections 100"):
        build_app({**TEST_CONTEXT, "database_max_connections": 100, "proxy_max_connections_percent": 100},
                  outdir=str(tmp_path))
