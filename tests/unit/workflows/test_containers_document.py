"""Containers in the document: the model (children carry their container's id), validation
(where children may sit, what they and the nodes outside may read, the container's start, its
scope's edges, cycles, loop variables, the assigner's targets) and Dify import/export (the
canvas kept: relative positions, parentId, zIndex, sizes; assigner v1 and v2; loop constants)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.workflows.configs import MAX_LOOP_COUNT, outputs_of
from shared.workflows.definition import WorkflowDocument
from shared.workflows.dify import EXTENSION_KEY, export_dify, import_dify
from shared.workflows.engine.graph import plan
from shared.workflows.validation import validate_document

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "dify"
CONTAINER_FIXTURES = ["array_iteration_formatting_workflow.yml", "parallel_iteration_formatting_workflow.yml",
                      "iteration_flatten_output_enabled_workflow.yml", "iteration_flatten_output_disabled_workflow.yml",
                      "increment_loop_with_break_condition_workflow.yml"]


def base() -> dict[str, Any]:
    """start(items, word) -> it[it_start -> tpl(item)] -> lp[lp_start -> add(+1) -> check] -> end."""
    return {"nodes": [
        {"id": "start", "type": "start", "position": {"x": 0, "y": 0}, "config": {"variables": [
            {"variable": "items", "type": "array[string]"}, {"variable": "word"}]}},
        {"id": "it", "type": "iteration", "position": {"x": 300, "y": 0}, "size": {"width": 400, "height": 180},
         "config": {"start_node_id": "it_start", "iterator_selector": ["start", "items"],
                    "output_selector": ["tpl", "output"], "is_parallel": True, "parallel_nums": 4,
                    "error_handle_mode": "continue-on-error"}},
        {"id": "it_start", "type": "iteration_start", "parent_id": "it", "position": {"x": 24, "y": 68}},
        {"id": "tpl", "type": "template", "parent_id": "it", "position": {"x": 128, "y": 68},
         "config": {"template": "{{ x }} {{ w }}", "variables": [
             {"variable": "x", "value_selector": ["it", "item"]},
             {"variable": "w", "value_selector": ["start", "word"]}]}},
        {"id": "lp", "type": "loop", "position": {"x": 800, "y": 0}, "size": {"width": 500, "height": 200},
         "config": {"start_node_id": "lp_start", "loop_count": 5,
                    "loop_variables": [{"label": "num", "var_type": "number", "value": 1},
                                       {"label": "seen", "var_type": "array[string]", "value": ["x"]},
                                       {"label": "from", "var_type": "array[string]", "value_type": "variable",
                                        "value": ["it", "output"]}],
                    "break_conditions": [{"variable_selector": ["lp", "num"], "comparison_operator": "≥",
                                          "value": "4"}]}},
        {"id": "lp_start", "type": "loop_start", "parent_id": "lp", "position": {"x": 24, "y": 68}},
        {"id": "add", "type": "assigner", "parent_id": "lp", "position": {"x": 128, "y": 68}, "config": {"items": [
            {"variable_selector": ["lp", "num"], "operation": "+=", "input_type": "constant", "value": 1},
            {"variable_selector": ["lp", "seen"], "operation": "append", "value": ["start", "word"]}]}},
        {"id": "check", "type": "if_else", "parent_id": "lp", "position": {"x": 400, "y": 68}, "config": {"cases": [
            {"case_id": "big", "conditions": [{"variable_selector": ["lp", "num"], "comparison_operator": ">",
                                               "value": "2"}]}]}},
        {"id": "stop", "type": "loop_end", "parent_id": "lp", "position": {"x": 600, "y": 68}},
        {"id": "end", "type": "end", "position": {"x": 1400, "y": 0}, "config": {"outputs": [
            {"variable": "lines", "value_selector": ["it", "output"]},
            {"variable": "num", "value_selector": ["lp", "num"]},
            {"variable": "rounds", "value_selector": ["lp", "loop_round"]}]}},
    ], "edges": [
        {"source": "start", "target": "it"}, {"source": "it_start", "target": "tpl"},
        {"source": "it", "target": "lp"}, {"source": "lp_start", "target": "add"},
        {"source": "add", "target": "check"}, {"source": "check", "target": "stop", "source_handle": "big"},
        {"source": "lp", "target": "end"}]}


def problems(document: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [(p.node_id, p.field, p.code) for p in validate_document(document)]


def edited(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(base())
    change(document)
    return document


def node(document: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(item for item in document["nodes"] if item["id"] == node_id)


# -- the model and the plan --------------------------------------------------------------------
def test_a_document_with_containers_is_valid_and_the_top_level_plan_ignores_children() -> None:
    assert problems(base()) == []
    document = WorkflowDocument.model_validate(base())
    assert [n.id for n in document.children(None)] == ["start", "it", "lp", "end"]
    assert [n.id for n in document.children("lp")] == ["lp_start", "add", "check", "stop"]
    assert [(e.source, e.target) for e in document.scope_edges("it")] == [("it_start", "tpl")]
    assert plan(document, {}).ready == ["start"]
    # Inside a container, its start node is where a round begins.
    assert plan(document, {}, scope="lp").ready == ["lp_start"]
    # Outside, a loop answers its variables and its rounds; inside, its children read the variables.
    assert outputs_of(document.node("lp")) == {"num": "number", "seen": "array[string]", "from": "array[string]",
                                               "loop_round": "number"}


# -- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "expected"), [
    # Where nodes sit.
    (lambda d: node(d, "tpl").update(parent_id="nowhere"), ("tpl", "parent_id", "unknown_container")),
    (lambda d: node(d, "tpl").update(parent_id="start"), ("tpl", "parent_id", "not_a_container")),
    (lambda d: node(d, "lp").update(parent_id="it"), ("lp", "parent_id", "nested_container")),
    (lambda d: node(d, "it_start").update(parent_id="lp"), ("it_start", "parent_id", "outside_its_container")),
    (lambda d: node(d, "stop").update(parent_id=None), ("stop", "parent_id", "outside_its_container")),
    (lambda d: node(d, "it")["config"].update(start_node_id="tpl"), ("it", "config.start_node_id",
                                                                      "invalid_start_node")),
    (lambda d: d["nodes"].append({"id": "again", "type": "loop_start", "parent_id": "lp"}),
     ("again", "type", "multiple_container_starts")),
    (lambda d: d["nodes"].append({"id": "e2", "type": "end", "parent_id": "lp"}),
     ("e2", "parent_id", "not_allowed_in_container")),
    # Edges stay in their scope; a container's start has none coming in; children are reached.
    (lambda d: d["edges"].append({"source": "start", "target": "tpl"}), (None, "edges[7]", "edge_crosses_container")),
    (lambda d: d["edges"].append({"source": "check", "target": "lp_start"}), ("lp_start", "", "start_has_incoming")),
    (lambda d: d["nodes"].append({"id": "lost", "type": "loop_end", "parent_id": "lp"}),
     ("lost", "", "unreachable_node")),
    (lambda d: d["edges"].extend([{"source": "check", "target": "add", "source_handle": "false"}]),
     ("add", "", "cycle")),
    # What children and outside nodes read.
    (lambda d: node(d, "end")["config"]["outputs"].append({"variable": "x", "value_selector": ["tpl", "output"]}),
     ("end", "config.outputs[3].value_selector", "container_child_reference")),
    (lambda d: node(d, "tpl")["config"]["variables"].append({"variable": "y", "value_selector": ["it", "output"]}),
     ("tpl", "config.variables[2].value_selector", "unknown_output")),
    (lambda d: node(d, "tpl")["config"]["variables"].append({"variable": "y", "value_selector": ["lp", "num"]}),
     ("tpl", "config.variables[2].value_selector", "not_upstream")),
    (lambda d: node(d, "it")["config"].update(output_selector=["start", "word"]),
     ("it", "config.output_selector", "output_selector_not_child")),
    (lambda d: node(d, "it")["config"].update(output_selector=[]), ("it", "config.output_selector",
                                                                    "missing_output_selector")),
    (lambda d: node(d, "lp")["config"]["break_conditions"].append(
        {"variable_selector": ["lp", "nope"], "comparison_operator": "empty"}),
     ("lp", "config.break_conditions[1].variable_selector", "unknown_output")),
    # Loop variables.
    (lambda d: node(d, "lp")["config"]["loop_variables"][0].update(value="1"),
     ("lp", "config.loop_variables[0].value", "invalid_loop_variable")),
    (lambda d: node(d, "lp")["config"]["loop_variables"][1].update(label="num"),
     ("lp", "config.loop_variables[1].label", "duplicate_variable")),
    (lambda d: node(d, "lp")["config"].update(loop_count=MAX_LOOP_COUNT + 1), ("lp", "config.loop_count",
                                                                               "invalid_config")),
    (lambda d: node(d, "lp")["config"]["loop_variables"][2].update(var_type="array[number]"),
     ("lp", "config.loop_variables[2].value", "type_mismatch")),
    # The assigner changes the variables of its loop, as their types allow.
    (lambda d: node(d, "add")["config"]["items"][0].update(variable_selector=["lp", "missing"]),
     ("add", "config.items[0].variable_selector", "not_a_loop_variable")),
    (lambda d: node(d, "add")["config"]["items"][0].update(variable_selector=["start", "word"]),
     ("add", "config.items[0].variable_selector", "not_a_loop_variable")),
    (lambda d: node(d, "add")["config"]["items"][0].update(operation="append"),
     ("add", "config.items[0]", "invalid_assignment")),
    (lambda d: node(d, "add")["config"]["items"][0].update(value="one"), ("add", "config.items[0]",
                                                                          "invalid_assignment")),
    (lambda d: node(d, "add")["config"]["items"][0].update(input_type="variable", value=["start", "word"]),
     ("add", "config.items[0]", "invalid_assignment")),
    (lambda d: node(d, "add")["config"]["items"][0].update(variable_selector=["conversation", "x"]),
     ("add", "config.items[0].variable_selector", "conversation_variable_unsupported")),
])
def test_container_rules_are_located(change: Any, expected: tuple[str | None, str, str]) -> None:
    found = problems(edited(change))
    assert expected in found, found


def test_children_read_their_container_upstream_nodes_and_earlier_siblings_only() -> None:
    def change(d: dict[str, Any]) -> None:
        node(d, "check")["config"]["cases"][0]["conditions"].extend([
            # The item of another container, a later sibling, a node after the loop.
            {"variable_selector": ["it", "item"], "comparison_operator": "empty"},
            {"variable_selector": ["stop", "x"], "comparison_operator": "empty"},
            {"variable_selector": ["end", "x"], "comparison_operator": "empty"},
            # Upstream of the loop and of the check: fine.
            {"variable_selector": ["start", "word"], "comparison_operator": "empty"},
            {"variable_selector": ["it", "output"], "comparison_operator": "empty"}])
    found = problems(edited(change))
    field = "config.cases[0].conditions[{}].variable_selector".format
    assert found == [("check", field(1), "unknown_output"), ("check", field(2), "not_upstream"),
                     ("check", field(3), "not_upstream")]


def test_the_item_and_the_output_take_their_types_from_the_graph() -> None:
    def change(d: dict[str, Any]) -> None:
        node(d, "start")["config"]["variables"][0]["type"] = "array[number]"
        node(d, "tpl")["config"]["variables"].append({"variable": "n", "value_selector": ["it", "index"]})
        d["nodes"].append({"id": "cmp", "type": "if_else", "parent_id": "it", "config": {"cases": [
            {"case_id": "a", "conditions": [
                {"variable_selector": ["it", "item"], "comparison_operator": "start with", "value": "a"},
                {"variable_selector": ["it", "index"], "comparison_operator": ">", "value": "1"}]}]}})
        d["edges"].append({"source": "it_start", "target": "cmp"})
        # The output collects the template's text: an array of strings.
        node(d, "lp")["config"]["loop_variables"][2]["var_type"] = "array[number]"
    found = problems(edited(change))
    assert found == [("lp", "config.loop_variables[2].value", "type_mismatch"),
                     ("cmp", "config.cases[0].conditions[0].variable_selector", "type_mismatch")]


# -- Dify --------------------------------------------------------------------------------------
def load(content: str) -> Any:
    return import_dify(content, model_names=frozenset(), default_model=None)


def graph(data: dict[str, Any]) -> dict[str, Any]:
    return data["workflow"]["graph"] if "workflow" in data else data


def test_a_document_with_containers_survives_export_and_import_unchanged() -> None:
    document = WorkflowDocument.model_validate(base())
    exported = export_dify(document, name="containers")
    result = load(exported)
    assert result.warnings == []
    canonical = WorkflowDocument.model_validate(base())
    for item in canonical.nodes:
        item.config = result.document.node(item.id).config  # configs come back canonical (every field)
    assert result.document == canonical
    data = yaml.safe_load(exported)
    # Only the array input (Dify's start node has none) needs the extension.
    assert [n["id"] for n in graph(data)["nodes"] if EXTENSION_KEY in n["data"]] == ["start"]


def test_the_export_is_difys_canvas_for_containers() -> None:
    data = graph(yaml.safe_load(export_dify(WorkflowDocument.model_validate(base()), name="x")))
    nodes = {n["id"]: n for n in data["nodes"]}
    assert (nodes["it"]["zIndex"], nodes["it"]["width"], nodes["it"]["height"]) == (1, 400, 180)
    assert (nodes["it"]["data"]["width"], nodes["it"]["data"]["height"]) == (400, 180)
    assert nodes["tpl"]["parentId"] == "it" and nodes["tpl"]["zIndex"] == 1002
    assert nodes["tpl"]["position"] == {"x": 128, "y": 68}
    assert nodes["tpl"]["positionAbsolute"] == {"x": 428, "y": 68}
    assert nodes["tpl"]["data"] | {"template": None, "variables": None} == {
        "type": "template-transform", "title": "", "desc": "", "selected": False, "isInIteration": True,
        "isInLoop": False, "iteration_id": "it", "template": None, "variables": None}
    assert (nodes["it_start"]["type"], nodes["it_start"]["draggable"], nodes["it_start"]["selectable"]) == (
        "custom-iteration-start", False, False)
    assert nodes["lp_start"]["type"] == "custom-loop-start"
    assert nodes["add"]["data"]["loop_id"] == "lp" and nodes["add"]["data"]["version"] == "2"
    assert nodes["lp"]["data"]["loop_variables"][1]["value"] == '["x"]'  # Dify reads array constants as JSON text
    assert nodes["it"]["data"]["iterator_input_type"] == "array[string]"
    edges = {(e["source"], e["target"]): e for e in data["edges"]}
    assert edges[("it_start", "tpl")]["zIndex"] == 1002
    assert edges[("it_start", "tpl")]["data"] == {"sourceType": "iteration-start", "targetType": "template-transform",
                                                 "isInIteration": True, "isInLoop": False, "iteration_id": "it"}
    assert edges[("add", "check")]["data"]["loop_id"] == "lp"
    assert edges[("start", "it")]["zIndex"] == 0 and edges[("start", "it")]["data"]["isInIteration"] is False


@pytest.mark.parametrize("name", CONTAINER_FIXTURES)
def test_difys_container_fixtures_come_back_with_their_canvas(name: str) -> None:
    original = graph(yaml.safe_load((FIXTURES / name).read_text()))
    imported = load((FIXTURES / name).read_text()).document
    exported = graph(yaml.safe_load(export_dify(imported, name="x")))
    before = {n["id"]: n for n in original["nodes"]}
    for after in exported["nodes"]:
        dify = before[after["id"]]
        for key in ("position", "positionAbsolute", "parentId", "zIndex"):
            assert after.get(key) == dify.get(key), (after["id"], key)
        if dify["data"]["type"] in ("iteration", "loop"):
            assert (after["width"], after["height"]) == (dify["width"], dify["height"])
        assert after["type"] == dify["type"]
        for key in ("isInIteration", "isInLoop", "iteration_id", "loop_id"):
            if dify["data"].get(key):
                assert after["data"][key] == dify["data"][key], (after["id"], key)
    for dify_edge, after_edge in zip(original["edges"], exported["edges"], strict=True):
        assert after_edge["zIndex"] == dify_edge["zIndex"]
        assert after_edge["data"] == dify_edge["data"]


def test_the_loop_fixture_maps_its_variables_conditions_and_assigner() -> None:
    document = load((FIXTURES / "increment_loop_with_break_condition_workflow.yml").read_text()).document
    loop = document.node("1754827949615")
    assert loop.config["loop_variables"] == [{"label": "num", "var_type": "number", "value_type": "constant",
                                              "value": 1}]
    assert loop.config["break_conditions"] == [{"variable_selector": ["1754827949615", "num"],
                                                "comparison_operator": "≥", "value": "5"}]
    assert (loop.config["loop_count"], loop.config["start_node_id"]) == (10, "1754827949615start")
    assert document.node("1754827988715").parent_id == "1754827949615"
    assert document.node("1754827988715").config == {"items": [
        {"variable_selector": ["1754827949615", "num"], "operation": "+=", "input_type": "constant", "value": 1}]}
    assert loop.size is not None and (loop.size.width, loop.size.height) == (508, 206)


def dsl(*nodes: dict[str, Any], edges: list[tuple[str, str]]) -> str:
    return yaml.safe_dump({"app": {"name": "x", "mode": "workflow"}, "kind": "app", "version": "0.3.1",
                           "workflow": {"graph": {"nodes": list(nodes), "edges": [
                               {"source": s, "target": t, "sourceHandle": "source"} for s, t in edges]}}})


def test_assigner_v1_imports_as_one_item_and_loop_constants_are_read_as_dify_reads_them() -> None:
    content = dsl(
        {"id": "start", "data": {"type": "start", "variables": [{"variable": "q", "type": "text-input"}]}},
        {"id": "lp", "data": {"type": "loop", "start_node_id": "lps", "loop_count": 5000, "logical_operator": "and",
                              "break_conditions": [], "loop_variables": [
                                  {"label": "n", "var_type": "number", "value_type": "constant", "value": "2.5"},
                                  {"label": "tags", "var_type": "array[string]", "value_type": "constant",
                                   "value": '["a"]'},
                                  {"label": "ok", "var_type": "boolean", "value_type": "constant", "value": "true"},
                                  {"label": "q", "var_type": "string", "value_type": "variable",
                                   "value": ["start", "q"]}]}},
        {"id": "lps", "parentId": "lp", "data": {"type": "loop-start", "isInLoop": True}},
        {"id": "set", "data": {"type": "assigner", "loop_id": "lp", "assigned_variable_selector": ["lp", "tags"],
                               "input_variable_selector": ["start", "q"], "write_mode": "append"}},
        {"id": "end", "data": {"type": "end", "outputs": [{"variable": "t", "value_selector": ["lp", "tags"]}]}},
        edges=[("start", "lp"), ("lps", "set"), ("lp", "end")])
    result = load(content)
    document = result.document
    assert [v["value"] for v in document.node("lp").config["loop_variables"]] == [2.5, ["a"], True, ["start", "q"]]
    assert document.node("lp").config["loop_count"] == MAX_LOOP_COUNT
    assert result.warnings == [f"node lp: loop_count 5000 is outside 1..{MAX_LOOP_COUNT}; {MAX_LOOP_COUNT} is used"]
    assert document.node("set").parent_id == "lp"
    assert document.node("set").config == {"items": [
        {"variable_selector": ["lp", "tags"], "operation": "append", "input_type": "variable",
         "value": ["start", "q"]}]}
    assert validate_document(document) == []


def test_iteration_settings_out_of_range_are_clamped_with_a_warning() -> None:
    content = dsl(
        {"id": "start", "data": {"type": "start", "variables": []}},
        {"id": "it", "data": {"type": "iteration", "start_node_id": "its", "iterator_selector": ["start", "x"],
                              "output_selector": [], "is_parallel": True, "parallel_nums": 50,
                              "output_type": "array[file]x"}},
        {"id": "its", "parentId": "it", "data": {"type": "iteration-start"}},
        edges=[("start", "it")])
    result = load(content)
    config = result.document.node("it").config
    assert (config["parallel_nums"], config["output_type"], config["flatten_output"]) == (10, None, True)
    assert result.warnings == [
        "node it: output_type 'array[file]x' is not an array type; the collected output's type is used",
        "node it: parallel_nums 50 is outside 1..10; 10 is used"]
