"""Pure parts of the workflow definitions API: a new workflow's starter graph, numbered names
for imports, the size and number checks of a saved draft, and download file names."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from shared.http.api import attachment
from shared.workflows.api import CreateWorkflow
from shared.workflows.definition import MAX_DEFINITION_BYTES, WorkflowDocument
from shared.workflows.service import numbered_name, starter_document


def test_the_starter_graph_links_a_start_node_to_an_end_node() -> None:
    document = starter_document()
    assert [(node.id, node.type) for node in document.nodes] == [("start", "start"), ("end", "end")]
    assert [(edge.source, edge.source_handle, edge.target) for edge in document.edges] == [
        ("start", "source", "end")]
    assert starter_document() == document and starter_document() is not document


def test_numbered_names_ignore_case_and_fit_100_characters() -> None:
    assert numbered_name("Greeter", set()) == "Greeter"
    assert numbered_name("Greeter", {"greeter"}) == "Greeter (2)"
    assert numbered_name("Greeter", {"greeter", "greeter (2)", "greeter (3)"}) == "Greeter (4)"
    long = "x" * 100
    numbered = numbered_name(long, {long})
    assert numbered == "x" * 96 + " (2)" and len(numbered) == 100
    everything = {long} | {("x" * 100)[:100 - len(f" ({n})")] + f" ({n})" for n in range(2, 1000)}
    last = numbered_name(long, everything)
    assert len(last) <= 100 and last.lower() not in everything


def test_a_draft_is_refused_past_its_size_or_with_a_number_json_cannot_hold() -> None:
    def create(config: dict[str, object]) -> CreateWorkflow:
        return CreateWorkflow.model_validate({"name": "a", "document": {"nodes": [
            {"id": "t", "type": "template", "config": config}]}})

    assert create({"template": "x" * (MAX_DEFINITION_BYTES - 500)}).document is not None
    for config, message in (({"template": "x" * MAX_DEFINITION_BYTES}, "at most 1000000"),
                            ({"x": float("nan")}, "NaN or Infinity"), ({"x": [float("inf")]}, "NaN or Infinity")):
        with pytest.raises(ValidationError, match=message):
            create(config)
    assert CreateWorkflow.model_validate({"name": "a"}).document is None
    assert isinstance(starter_document(), WorkflowDocument)


@pytest.mark.parametrize(("filename", "plain", "exact"), [
    ("Greeter.yml", "Greeter.yml", "Greeter.yml"),
    ('a "b"\r\nSet-Cookie: x.yml', "a _b___Set-Cookie_ x.yml", 'a "b"__Set-Cookie: x.yml'),
    ("x\u202eylm.exe", "x_ylm.exe", "x_ylm.exe"),  # no right-to-left override spoofing the extension
    ("../../etc/passwd", "etc_passwd", ".._.._etc_passwd"),
    ("报告.yml", "download.yml", "报告.yml"),
    ("no extension", "no extension", "no extension"),
])
def test_a_download_names_its_file_safely_for_every_client(filename: str, plain: str, exact: str) -> None:
    header = attachment(filename)
    assert "\r" not in header and "\n" not in header
    disposition, plain_part, exact_part = header.split("; ")
    assert disposition == "attachment" and plain_part == f'filename="{plain}"'
    assert exact_part.startswith("filename*=UTF-8''") and unquote(exact_part.split("''", 1)[1]) == exact
