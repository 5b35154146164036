"""Dify's own workflow fixtures and the outcomes its tests assert of them
(tests/fixtures/dify/README.md), prepared for a Stratus run.

A case's mocks become what a real boundary answers, never patched internals: an LLM mock is a
reply of the local OpenAI-protocol server, an HTTP mock a reply of a local HTTP server. The one
change made to a fixture is where its HTTP node points (``https://sample.invalid`` → that local
server), plus the ``fixture_overrides`` the Dify test itself applied; a case whose HTTP node's URL
is an input (``https://api.example.com/...``) has that input pointed at the local server too.

Tool nodes (Dify's marketplace and built-in tools): ``time``/``current_time`` is Stratus's
built-in ``current_time``; another tool is served by a tool provider the test creates in the
tenant under the Dify provider's name (:func:`tool_providers`): an OpenAPI document with one
operation per tool, whose parameters are the tool node's, at ``/tools/<tool>`` of the local HTTP
server, which answers the case's tool mock (``{"text": ...}`` as that text, anything else as
JSON). So the tool node really calls an OpenAPI tool through the safe fetch path.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support.fake_openai import ChatScript, RawReply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dify"
# Node types the workflow engine runs (issue 12; containers, the assigner and chatflows' answer
# nodes, issue 13; tool nodes, issue 14).
SUPPORTED_DIFY_TYPES = frozenset({"start", "end", "llm", "knowledge-retrieval", "if-else", "code",
                                  "template-transform", "http-request", "variable-aggregator",
                                  "iteration", "iteration-start", "loop", "loop-start", "loop-end", "assigner",
                                  "question-classifier", "parameter-extractor", "list-operator",
                                  "document-extractor", "answer", "tool"})
SAMPLE_HOST = "https://sample.invalid"
# The host of an HTTP node's URL given as a case's input (http_request_with_json_tool_workflow.yml).
EXAMPLE_HOST = "https://api.example.com"
# Dify tools that are Stratus built-ins (tool name → built-in): no provider to create.
BUILTIN_TOOLS = {"current_time": "current_time"}
# Where the local HTTP server serves a case's tools.
TOOLS_PATH = "/tools"
# Cases of supported fixtures that do not run, each for a reason of its own: what the Dify test
# asserts holds only because its mock replaces the node it names, and a real model (behind
# Stratus's engine or Dify's own) would not give it.
LEFT_OUT: dict[int, str] = {
    43: "test-answer-order.yml with query \"\": the LLM's only prompt message is {{#sys.query#}}, which renders "
        "empty, and Dify's own LLM node then fails (NoPromptFoundError), as Stratus's does (llm_prompt_empty); "
        "the Dify test passes only because its auto-mock replaces the LLM node. The answer order it checks is "
        "run on the same fixture with a query by tests/integration/test_chatflows.py",
    50: "basic_chatflow.yml answering {{#llm.structured_output#}}: the fixture's LLM node has structured output "
        "off, so it has no structured_output (in Dify too, with a real model); the test's mock injects one. "
        "Stratus refuses the reference at validation (unknown_output). How an answer renders an object (indented "
        "JSON) is tested by tests/unit/workflows/test_chatflows.py",
}


@dataclass
class CompatCase:
    index: int
    fixture: str
    inputs: dict[str, Any]
    expected_outputs: dict[str, Any] | None
    expected_status: str
    output_match: str | None
    mocks: dict[str, Any]
    overrides: dict[str, Any]
    description: str
    # A chatflow's (advanced-chat) user message, sys.query; None for a workflow.
    query: str | None = None
    # The streamed answer the test asserts (a chatflow's answer nodes' text), when it does.
    expected_answer: str | None = None

    @property
    def chatflow(self) -> bool:
        return self.query is not None

    @property
    def id(self) -> str:
        return f"{self.index:02d}-{self.fixture.removesuffix('.yml').replace('/', '-')}"


def _graph(content: dict[str, Any]) -> dict[str, Any]:
    workflow = content.get("workflow")
    return dict(workflow["graph"]) if isinstance(workflow, dict) else content


def _node_types(content: dict[str, Any]) -> set[str]:
    return {str(node.get("data", {}).get("type", node.get("type"))) for node in _graph(content).get("nodes", [])}


def _mode(content: dict[str, Any]) -> str | None:
    app = content.get("app")
    return "workflow" if app is None else app.get("mode")


def cases(mode: str | None = None) -> list[CompatCase]:
    """Every case whose fixture is a workflow (or a bare graph) or a chatflow (advanced-chat) of
    supported node types, but those :data:`LEFT_OUT`; ``mode``: only workflows or chatflows."""
    selected = []
    for index, raw in enumerate(json.loads((FIXTURES / "dify-cases.json").read_text())):
        content = yaml.safe_load((FIXTURES / raw["fixture"]).read_text())
        kind = _mode(content)
        if kind not in ("workflow", "advanced-chat") or not _node_types(content) <= SUPPORTED_DIFY_TYPES:
            continue
        if index in LEFT_OUT or (mode is not None and mode != ("chatflow" if kind == "advanced-chat" else kind)):
            continue
        chatflow = kind == "advanced-chat"
        selected.append(CompatCase(index, raw["fixture"], raw["inputs"], raw["expected_outputs"],
                                   raw["expected_status"], raw.get("output_match"), raw["mocks"],
                                   raw.get("fixture_overrides") or {}, raw["description"],
                                   query=(raw.get("query") or "") if chatflow else None,
                                   expected_answer=raw.get("expected_answer")))
    return selected


def prepared_fixture(case: CompatCase, http_origin: str) -> str:
    """The fixture's YAML with the test's overrides applied and HTTP pointed at ``http_origin``."""
    content = yaml.safe_load((FIXTURES / case.fixture).read_text())
    for node in _graph(content)["nodes"]:
        data = node["data"]
        data.update(case.overrides.get(f"node:{node['id']}", {}))
        if data.get("type") == "http-request":
            data["url"] = str(data["url"]).replace(SAMPLE_HOST, http_origin)
    return yaml.safe_dump(content, allow_unicode=True, sort_keys=False)


def prepared_inputs(case: CompatCase, http_origin: str) -> dict[str, Any]:
    """The case's inputs, an HTTP node's URL given as an input pointed at ``http_origin``."""
    return {name: value.replace(EXAMPLE_HOST, http_origin) if isinstance(value, str) else value
            for name, value in case.inputs.items()}


def _tool_nodes(fixture: str) -> list[dict[str, Any]]:
    content = yaml.safe_load((FIXTURES / fixture).read_text())
    return [dict(node["data"]) for node in _graph(content)["nodes"] if node.get("data", {}).get("type") == "tool"
            and node["data"].get("provider_type") != "workflow"]


def tool_providers(case: CompatCase, http_origin: str) -> list[dict[str, Any]]:
    """The tool providers (``POST /api/v1/tools`` bodies) that serve the case's tools: one per
    Dify provider, named as it, an OpenAPI operation per tool (its parameters in the query), at
    the local HTTP server. Built-in tools need none."""
    by_provider: dict[str, dict[str, list[str]]] = {}
    for data in _tool_nodes(case.fixture):
        if data["tool_name"] in BUILTIN_TOOLS:
            continue
        parameters = sorted(str(name) for name in (data.get("tool_parameters") or {}))
        by_provider.setdefault(str(data["provider_name"]), {})[str(data["tool_name"])] = parameters
    providers = []
    for name, tools in by_provider.items():
        paths = {f"/{tool}": {"get": {"operationId": tool, "summary": f"{tool} (the case's mock)", "parameters": [
            {"name": parameter, "in": "query", "schema": {"type": "string"}} for parameter in parameters],
            "responses": {"200": {"description": "the mocked output"}}}} for tool, parameters in tools.items()}
        providers.append({"name": name, "kind": "openapi", "base_url": http_origin + TOOLS_PATH, "schema": {
            "openapi": "3.0.3", "info": {"title": name, "version": "1"}, "paths": paths}})
    return providers


def _prompt_markers(fixture: str, llm_node_ids: list[str]) -> dict[str, str]:
    """Each LLM node's literal prompt text, when it tells the nodes apart (no references, and
    no other node's the same): what its request holds, so that parallel nodes get their own reply."""
    content = yaml.safe_load((FIXTURES / fixture).read_text())
    texts: dict[str, str] = {}
    for node in _graph(content)["nodes"]:
        data = node.get("data", {})
        if str(node.get("id")) in llm_node_ids and isinstance(data.get("prompt_template"), list):
            literal = " ".join(str(m.get("text", "")) for m in data["prompt_template"] if isinstance(m, dict))
            if literal.strip() and "{{" not in literal:
                texts[str(node["id"])] = literal.strip()
    return {node_id: text for node_id, text in texts.items() if list(texts.values()).count(text) == 1}


def llm_replies(case: CompatCase, llm_node_ids: list[str]) -> list[ChatScript | RawReply]:
    """The model server's replies, one per LLM node in the order given (each bound to its node's
    prompt when the prompt tells it apart)."""
    replies: list[ChatScript | RawReply] = []
    markers = _prompt_markers(case.fixture, llm_node_ids) if len(llm_node_ids) > 1 else {}
    for node_id in llm_node_ids:
        mock = case.mocks.get(f"node:{node_id}") or case.mocks.get("type:llm")
        if mock is None:
            replies.append(ChatScript(text=["Mocked LLM response"]))
        elif "__error__" in mock:
            # A refusal the gateway does not retry: the node fails with the provider's message.
            replies.append(RawReply(400, {"error": {"message": mock["__error__"], "type": "invalid_request_error",
                                                    "code": None, "param": None}}))
        else:
            usage = mock.get("usage") or {}
            replies.append(ChatScript(
                text=[mock.get("text", "")],
                usage=(int(usage.get("prompt_tokens", 12)), int(usage.get("completion_tokens", 7))),
                first_byte_delay_s=float(mock.get("__delay_s__", 0.0)), when=markers.get(node_id)))
    return replies


def node_ids(fixture: str, dify_type: str) -> list[str]:
    """The ids of the fixture's nodes of one Dify type, in document order."""
    content = yaml.safe_load((FIXTURES / fixture).read_text())
    return [str(node["id"]) for node in _graph(content)["nodes"] if node.get("data", {}).get("type") == dify_type]


def outputs_match(case: CompatCase, outputs: dict[str, Any]) -> bool:
    expected = case.expected_outputs or {}
    if case.output_match == "exact":
        return outputs == expected
    if case.output_match == "exact_after_strip":
        return all(key in outputs and str(outputs[key]).strip() == str(value).strip()
                   for key, value in expected.items())
    return all(key in outputs and outputs[key] == value for key, value in expected.items())


@dataclass
class HttpMock:
    """What the local server answers: a case's ``node:<http node>`` mock."""

    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    # Drop the connection without an answer (Dify's "no recorded fixture": the request fails).
    fail: bool = False


class HttpMockServer:
    """A loopback HTTP server answering every request with the current mock, and requests under
    ``/tools/<tool>`` with that tool's mock."""

    def __init__(self) -> None:
        self.mock = HttpMock()
        self.tools: dict[str, HttpMock] = {}
        self.requests: list[tuple[str, str, bytes]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                server.requests.append((self.command, self.path, self.rfile.read(length) if length else b""))
                path = self.path.split("?", 1)[0]
                tool = path[len(TOOLS_PATH) + 1:] if path.startswith(TOOLS_PATH + "/") else None
                mock = server.tools.get(tool, server.mock) if tool is not None else server.mock
                if mock.fail:
                    self.close_connection = True
                    self.connection.close()
                    return
                body = mock.body.encode()
                self.send_response(mock.status)
                for name, value in mock.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def use(self, case: CompatCase) -> None:
        ids = node_ids(case.fixture, "http-request")
        mock = next((case.mocks[f"node:{node_id}"] for node_id in ids if f"node:{node_id}" in case.mocks), {})
        if "__error__" in mock:
            self.mock = HttpMock(fail=True)
        else:
            self.mock = HttpMock(int(mock.get("status_code", 200)), str(mock.get("body", "")),
                                 dict(mock.get("headers") or {}))
        self.tools = {}
        content = yaml.safe_load((FIXTURES / case.fixture).read_text())
        for node in _graph(content)["nodes"]:
            data = node.get("data", {})
            if data.get("type") != "tool":
                continue
            answer = case.mocks.get(f"node:{node['id']}") or case.mocks.get("type:tool") or {}
            if set(answer) == {"text"}:
                self.tools[str(data["tool_name"])] = HttpMock(200, str(answer["text"]),
                                                              {"Content-Type": "text/plain; charset=utf-8"})
            else:
                self.tools[str(data["tool_name"])] = HttpMock(200, json.dumps(answer),
                                                              {"Content-Type": "application/json"})
        self.requests.clear()

    def __enter__(self) -> HttpMockServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

