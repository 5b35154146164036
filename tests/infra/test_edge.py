"""Streaming functions and the edge (docs/architecture.md §2.1, §2.4; docs/adr/0028-chat-edge.md):
each ``FunctionUrl`` entry is a function URL (RESPONSE_STREAM, AuthType NONE) serving its ASGI
app under the Lambda Web Adapter, and one CloudFront distribution sends its path prefixes there
and everything else to the HTTP API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from functions import catalog
from infra.edge import LOG_PREFIX
from infra.functions import WEB_ADAPTER_LAYER_VERSION, web_adapter_layer_arn
from infra.nag import logical_id as cfn_logical_id
from infra.packaging import ASGI_APP_ENV, START_SCRIPT, WEB_PORT_ENV, asgi_target, start_script
from infra.topology import stream_path_patterns, validate_streaming
from layers.build import MAX_FUNCTION_LAYERS
from shared.catalog import READINESS_SUFFIX
from tests.infra.support import Synth, ref_logical_id

STREAMING = catalog.streaming_functions()
# CloudFront's managed policies (fixed ids in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
ALL_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"}


def test_the_catalog_has_a_streaming_function() -> None:
    assert [fn.name for fn in STREAMING] == ["chat", "workflow-stream"]


def _function_url(synth: Synth, fn: catalog.Function) -> tuple[str, dict[str, Any]]:
    deployed = synth.function(fn.name)
    urls = [(logical_id, url["Properties"])
            for logical_id, url in synth.templates[deployed.stack].find_resources("AWS::Lambda::Url").items()
            if ref_logical_id(url["Properties"]["TargetFunctionArn"]) == deployed.logical_id]
    assert len(urls) == 1, fn.name
    return urls[0]


@pytest.mark.parametrize("fn", STREAMING, ids=lambda fn: fn.name)
def test_function_url_streams_and_leaves_auth_to_the_app(synth: Synth, fn: catalog.Function) -> None:
    deployed = synth.function(fn.name)
    logical_id, url = _function_url(synth, fn)
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "NONE"
    assert "Cors" not in url, "clients come through the edge, on the API's origin"
    permissions = [p["Properties"] for p in synth.templates[deployed.stack].find_resources(
        "AWS::Lambda::Permission").values() if ref_logical_id(p["Properties"]["FunctionName"]) == deployed.logical_id]
    # AuthType NONE needs both: InvokeFunctionUrl and InvokeFunction through the URL only.
    assert {"Action": "lambda:InvokeFunctionUrl", "FunctionName": {"Fn::GetAtt": [deployed.logical_id, "Arn"]},
            "FunctionUrlAuthType": "NONE", "Principal": "*"} in permissions
    assert any(p["Action"] == "lambda:InvokeFunction" and p.get("InvokedViaFunctionUrl") is True
               and p["Principal"] == "*" for p in permissions)
    assert not any(p["Action"] == "lambda:InvokeFunction" and p["Principal"] == "*"
                   and not p.get("InvokedViaFunctionUrl") for p in permissions), "never public outside the URL"
    # The public URL is acknowledged with its reason where reviewers look.
    resource = synth.json(deployed.stack)["Resources"][logical_id]
    reasons = {r["id"]: r["reason"] for r in resource["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert "authenticates every request" in reasons["Serverless-LambdaFunctionUrlAuth"]


@pytest.mark.parametrize("fn", STREAMING, ids=lambda fn: fn.name)
def test_streaming_function_runs_its_asgi_app_under_the_web_adapter(synth: Synth, fn: catalog.Function) -> None:
    assert isinstance(fn.trigger, catalog.FunctionUrl)
    deployed = synth.function(fn.name)
    props, env = deployed.props, deployed.env
    assert props["Handler"] == START_SCRIPT == "run.sh"
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env[WEB_PORT_ENV] == "8080"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == {
        "chat": "/api/v1/chat" + READINESS_SUFFIX,
        # A prefix's parameters are written "_" in the readiness path (no request has it).
        "workflow-stream": "/api/v1/workflows/_/runs" + READINESS_SUFFIX}[fn.name]
    # The path the app's builder answers (shared/http/stream.py) is the one the adapter polls.
    assert fn.trigger.readiness_path == env["AWS_LWA_READINESS_CHECK_PATH"]
    assert env[ASGI_APP_ENV] == asgi_target(fn) == f"{fn.module}:{fn.trigger.app}"
    layers = props["Layers"]
    assert len(layers) <= MAX_FUNCTION_LAYERS
    adapter = [layer for layer in layers if "Fn::Join" in layer and "LambdaAdapterLayer" in str(layer)]
    assert adapter == [{"Fn::Join": ["", ["arn:aws:lambda:", {"Ref": "AWS::Region"},
                                          f":753240598075:layer:LambdaAdapterLayerArm64:{WEB_ADAPTER_LAYER_VERSION}"]]}]
    assert synth.root.resolve(web_adapter_layer_arn()) == adapter[0]


def test_adapter_layer_follows_the_architecture() -> None:
    from aws_cdk import aws_lambda as lambda_

    assert ":layer:LambdaAdapterLayerX86:" in web_adapter_layer_arn(lambda_.Architecture.X86_64)
    assert ":layer:LambdaAdapterLayerArm64:" in web_adapter_layer_arn(lambda_.Architecture.ARM_64)


# --- The start script ---------------------------------------------------------------------------


def test_start_script_is_bundled_executable_and_valid_bash(synth: Synth) -> None:
    code_dir = Path(synth.function(STREAMING[0].name).resource["Metadata"]["aws:asset:path"])
    script = code_dir / START_SCRIPT
    assert script.read_text() == start_script()
    assert script.stat().st_mode & 0o111 == 0o111, "the adapter executes it"
    subprocess.run(["bash", "-n", str(script)], check=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_start_script_serves_the_asgi_app_named_in_the_environment(tmp_path: Path) -> None:
    # The script as the adapter runs it: from the task root, with the function's environment.
    task_root = tmp_path / "task"
    (task_root / "probe_pkg").mkdir(parents=True)
    (task_root / "probe_pkg" / "__init__.py").write_text("")
    (task_root / "probe_pkg" / "web.py").write_text(
        "async def app(scope, receive, send):\n"
        "    assert scope['type'] == 'http'\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': scope['path'].encode()})\n")
    script = task_root / START_SCRIPT
    script.write_text(start_script())
    script.chmod(0o755)
    port = _free_port()
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(task_root), WEB_PORT_ENV: str(port),
           ASGI_APP_ENV: "probe_pkg.web:app",
           # python3 is the interpreter with uvicorn (the web layer's role in Lambda).
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen([str(script)], cwd=task_root, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/chat/_ready", timeout=2) as answer:
                    assert answer.status == 200
                    assert answer.read() == b"/api/v1/chat/_ready"
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    output, _ = process.communicate(timeout=10)
                    pytest.fail(f"the start script did not serve the app: {output.decode()}")
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_start_script_refuses_to_start_without_its_app(tmp_path: Path) -> None:
    script = tmp_path / START_SCRIPT
    script.write_text(start_script())
    script.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != ASGI_APP_ENV}
    result = subprocess.run([str(script)], env={**env, "LAMBDA_TASK_ROOT": str(tmp_path)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert ASGI_APP_ENV in result.stderr


def test_a_deployed_app_missing_a_setting_exits_at_startup_naming_it(tmp_path: Path) -> None:
    # The chat app as the adapter starts it in AWS, without its database settings: uvicorn runs
    # the app's lifespan (the entry's settings check) and exits before serving, rather than
    # failing the first request that needs the database.
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / START_SCRIPT
    script.write_text(start_script())
    script.chmod(0o755)
    (chat,) = [fn for fn in STREAMING if fn.name == "chat"]
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "HOME": str(tmp_path), "LAMBDA_TASK_ROOT": str(root), WEB_PORT_ENV: str(_free_port()),
           ASGI_APP_ENV: asgi_target(chat), "STRATUS_RUNTIME": "lambda", "STRATUS_FUNCTION": chat.name,
           "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}
    result = subprocess.run([str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "function chat cannot start" in result.stderr and "DATABASE_SECRET_ARN" in result.stderr, result.stderr


# --- The edge -----------------------------------------------------------------------------------


def _distribution(synth: Synth) -> dict[str, Any]:
    (distribution,) = synth.templates["root"].find_resources("AWS::CloudFront::Distribution").values()
    return dict(distribution["Properties"]["DistributionConfig"])


def _origin_domain(config: dict[str, Any], origin_id: str) -> Any:
    (origin,) = [o for o in config["Origins"] if o["Id"] == origin_id]
    custom = origin["CustomOriginConfig"]
    assert custom["OriginProtocolPolicy"] == "https-only"
    assert custom["OriginSSLProtocols"] == ["TLSv1.2"]
    select = origin["DomainName"]["Fn::Select"]
    assert select[0] == 2, "the host name of an https:// URL"
    return select[1]["Fn::Split"][1]


def _assert_uncached_and_forwarding(behavior: dict[str, Any]) -> None:
    assert set(behavior["AllowedMethods"]) == ALL_METHODS
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    # Every viewer header but Host: Authorization and Last-Event-ID reach the origin.
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert behavior["ViewerProtocolPolicy"] == "https-only"


def test_default_behavior_goes_to_the_http_api(synth: Synth) -> None:
    config = _distribution(synth)
    default = config["DefaultCacheBehavior"]
    _assert_uncached_and_forwarding(default)
    api = cfn_logical_id(synth.root.api.http_api)
    assert _origin_domain(config, default["TargetOriginId"]) == {"Fn::GetAtt": [api, "ApiEndpoint"]}


@pytest.mark.parametrize("fn", STREAMING, ids=lambda fn: fn.name)
def test_stream_prefixes_go_to_the_function_url_uncompressed(synth: Synth, fn: catalog.Function) -> None:
    assert isinstance(fn.trigger, catalog.FunctionUrl)
    config = _distribution(synth)
    behaviors = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    patterns = stream_path_patterns(fn.trigger)
    assert patterns == {
        # The OpenAI facade's chat completions are chat turns too (docs/adr/0042-compatible-api-facades.md).
        # Coze's chats and Dify's chat and completion messages too (docs/adr/0043, 0046).
        "chat": ["/api/v1/chat", "/api/v1/chat/*", "/openai/v1/chat/completions", "/openai/v1/chat/completions/*",
                 "/coze/v3/chat", "/coze/v3/chat/*", "/dify/v1/chat-messages", "/dify/v1/chat-messages/*",
                 "/dify/v1/completion-messages", "/dify/v1/completion-messages/*"],
        # Parameters become CloudFront's "*" (docs/adr/0035-workflow-run-streaming.md).
        "workflow-stream": ["/api/v1/workflows/*/runs", "/api/v1/workflows/*/runs/*", "/api/v1/workflow-runs/*/events",
                            "/api/v1/workflow-runs/*/events/*",
                            # Dify's workflow runs (docs/adr/0046-dify-service-api.md).
                            "/dify/v1/workflows/run", "/dify/v1/workflows/run/*",
                            # Coze's ten workflow routes under two prefixes (docs/adr/0049-coze-workflows.md).
                            "/coze/v1/workflow", "/coze/v1/workflow/*", "/coze/v1/workflows",
                            "/coze/v1/workflows/*"]}[fn.name]
    url_id, _ = _function_url(synth, fn)
    nested = synth.root.domain_stacks[fn.domain].nested_stack_resource
    assert nested is not None
    for pattern in patterns:
        behavior = behaviors[pattern]
        _assert_uncached_and_forwarding(behavior)
        assert behavior["Compress"] is False, "a compressed SSE stream is buffered"
        # The origin is the function URL's host: an output of the function's domain stack.
        source = _origin_domain(config, behavior["TargetOriginId"])
        stack_id, output = source["Fn::GetAtt"]
        assert stack_id == cfn_logical_id(nested)
        value = synth.json(fn.domain)["Outputs"][output.removeprefix("Outputs.")]["Value"]
        assert value == {"Fn::GetAtt": [url_id, "FunctionUrl"]}
    (origin,) = {behaviors[p]["TargetOriginId"] for p in patterns}
    # Between two chunks of a stream (heartbeats come at least every 15 s) and for a whole
    # non-streamed answer.
    assert next(o for o in config["Origins"] if o["Id"] == origin)["CustomOriginConfig"]["OriginReadTimeout"] == 60


# CloudFront's default quota of cache behaviours per distribution (adjustable, but a deployment
# should not need a quota request): every streaming prefix costs two.
MAX_BEHAVIORS = 25


def test_the_distribution_stays_within_cloudfront_s_behavior_quota(synth: Synth) -> None:
    behaviors = _distribution(synth)["CacheBehaviors"]
    patterns = [p for fn in STREAMING if isinstance(fn.trigger, catalog.FunctionUrl)
                for p in stream_path_patterns(fn.trigger)]
    assert len(behaviors) == len(patterns) == 20
    assert len(behaviors) <= MAX_BEHAVIORS


def test_every_other_path_stays_on_the_api(synth: Synth) -> None:
    config = _distribution(synth)
    expected = [p for fn in STREAMING if isinstance(fn.trigger, catalog.FunctionUrl)
                for p in stream_path_patterns(fn.trigger)]
    assert sorted(b["PathPattern"] for b in config["CacheBehaviors"]) == sorted(expected)


def test_distribution_logs_to_the_access_log_bucket(synth: Synth) -> None:
    config = _distribution(synth)
    bucket = cfn_logical_id(synth.root.data.access_logs)
    assert config["Logging"] == {"Bucket": {"Fn::GetAtt": [bucket, "RegionalDomainName"]}, "Prefix": LOG_PREFIX}
    props = synth.templates["root"].find_resources("AWS::S3::Bucket")[bucket]["Properties"]
    # CloudFront writes its logs with an ACL: ACLs enabled, the bucket owner still owns them.
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]}
    assert config["HttpVersion"] == "http2and3"


def test_outputs_give_the_base_url_and_not_the_api_url(synth: Synth) -> None:
    outputs = synth.json("root")["Outputs"]
    (distribution,) = synth.templates["root"].find_resources("AWS::CloudFront::Distribution")
    assert outputs["BaseUrl"]["Value"] == {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution,
                                                                                         "DomainName"]}]]}
    # The execute-api URL is no address of the API (it refuses requests without the edge's header).
    assert "ApiUrl" not in outputs
    assert not any("execute-api" in json.dumps(output) for output in outputs.values())


def test_distribution_acknowledgments_carry_reasons(synth: Synth) -> None:
    (distribution,) = synth.templates["root"].find_resources("AWS::CloudFront::Distribution").values()
    ids = {r["id"] for r in distribution["Metadata"]["cdk_nag"]["rules_to_suppress"]}
    assert {"AwsSolutions-CFR1", "AwsSolutions-CFR2", "AwsSolutions-CFR4"} <= ids
    assert "AwsSolutions-CFR3" not in ids and "AwsSolutions-CFR5" not in ids, "logging and origin TLS are met"


# --- Catalog rules the edge relies on (checked at synth) ------------------------------------------


def _streaming(name: str, prefixes: tuple[str, ...], *paths: str) -> catalog.Function:
    routes = tuple(catalog.StreamRoute("GET", path, "agent:run") for path in paths)
    return catalog.Function(name, f"functions.{name}", "chat", catalog.FunctionUrl(prefixes, routes))


def _http(path: str) -> catalog.Function:
    return catalog.Function("probe-http", "functions.probe", "chat", catalog.Http("GET", path, permission="x"))


def test_the_catalog_passes_the_streaming_rules() -> None:
    validate_streaming()


@pytest.mark.parametrize(("functions", "message"), [
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/runs")], "outside its path prefixes"),
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/chats")], "outside its path prefixes"),
    ([_streaming("a", ("/api/v1/chat/",), "/api/v1/chat/")], "must look like"),
    ([_streaming("a", ("/api/v1/chat/*",), "/api/v1/chat/x")], "must look like"),
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/chat"), _streaming("b", ("/api/v1/chat",), "/api/v1/chat/x")],
     "belongs to both"),
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/chat"), _streaming("b", ("/api/v1/chat/x",), "/api/v1/chat/x")],
     "contains or lies under"),
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/chat"), _http("/api/v1/chat/{id}")], "lies under"),
    ([_streaming("a", ("/api/v1/chat",), "/api/v1/chat", "/api/v1/chat")], "duplicate streaming route"),
    # Parameters: whole segments, never first; the edge's "*" still sees HTTP routes below them.
    ([_streaming("a", ("/{tenant}/runs",), "/{tenant}/runs")], "must look like"),
    ([_streaming("a", ("/api/v1/x{id}/runs",), "/api/v1/x{id}/runs")], "must look like"),
    ([_streaming("a", ("/api/v1/w/{id}/runs",), "/api/v1/w/{id}/runs"), _http("/api/v1/w/{workflow_id}/runs")],
     "lies under"),
    ([_streaming("a", ("/api/v1/w/{id}/runs",), "/api/v1/w/{id}/runs"), _http("/api/v1/w/import/runs/{n}")],
     "lies under"),
    ([_streaming("a", ("/api/v1/w/{id}/runs",), "/api/v1/w/{id}/runs"),
      _streaming("b", ("/api/v1/w/{wid}/runs/{run}",), "/api/v1/w/{wid}/runs/{run}")], "contains or lies under"),
    ([_streaming("a", ("/api/v1/w/{id}/runs",), "/api/v1/w/{id}/other")], "outside its path prefixes"),
])
def test_streaming_rules_refuse(functions: list[catalog.Function], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_streaming(functions)


def test_a_sibling_path_is_not_under_a_prefix() -> None:
    validate_streaming([_streaming("a", ("/api/v1/chat",), "/api/v1/chat"), _http("/api/v1/chats")])
    # Beside a prefix with a parameter: the resource itself and its other sub-resources.
    validate_streaming([_streaming("a", ("/api/v1/w/{id}/runs",), "/api/v1/w/{id}/runs",
                                   "/api/v1/w/{workflow}/runs/{run}/x"),
                        _http("/api/v1/w/{id}"), _http("/api/v1/w/{id}/versions"), _http("/api/v1/w/import")])
