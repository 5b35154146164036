"""template (Dify's template-transform): renders a Jinja2 template over its variables, in
Jinja2's immutable sandbox. The sandbox refuses unsafe attributes (anything starting with an
underscore, a function's internals…) and mutating lists and dicts; here such an access fails
the node (``template_forbidden``) instead of rendering as empty. Variables with no value are
None; undefined names render empty, as in Dify. The output is capped at
:data:`MAX_OUTPUT_CHARS` characters (Dify's default limit): rendering stops there and the node
fails (``template_output_too_large``), so a runaway loop cannot exhaust memory.

Rendering runs in the platform process: Jinja2's sandbox is made for untrusted templates
(no attribute of Python internals, no I/O, ranges capped), unlike code nodes, which run in
the separate sandbox."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from shared.workflows.configs import TemplateConfig
from shared.workflows.engine.errors import NodeFailure
from shared.workflows.engine.nodes.base import NodeCall, NodeExecutor, NodeOutput, values_of

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT_CHARS = 400_000
# Compiled templates kept per container (templates of published versions repeat run after run).
_COMPILED_CACHE = 256


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class StrictSandbox(ImmutableSandboxedEnvironment):
        # The stock sandbox answers an undefined value for an unsafe attribute, which renders
        # as "" and hides the refusal; raising makes it visible to whoever wrote the template.
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} value is not allowed")

    # Jinja2's defaults otherwise, as Dify renders (no autoescape, a final newline dropped).
    return StrictSandbox(autoescape=False)


@functools.lru_cache(maxsize=_COMPILED_CACHE)
def _compiled(source: str) -> Template:
    return _environment().from_string(source)


def render(source: str, variables: dict[str, Any], max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """``source`` rendered over ``variables``; raises NodeFailure (``template_…``)."""
    from jinja2.exceptions import SecurityError, TemplateSyntaxError

    try:
        template = _compiled(source)
    except TemplateSyntaxError as exc:
        raise NodeFailure("template_syntax_error", f"The template does not parse (line {exc.lineno}): {exc.message}",
                          details={"line": exc.lineno}) from exc
    parts: list[str] = []
    size = 0
    try:
        for part in template.generate(**variables):
            size += len(part)
            if size > max_chars:
                raise NodeFailure("template_output_too_large",
                                  f"The template renders more than {max_chars} characters; shorten what it "
                                  f"outputs (or loop over fewer items)", details={"max_chars": max_chars})
            parts.append(part)
    except NodeFailure:
        raise
    except SecurityError as exc:
        raise NodeFailure("template_forbidden", f"The template uses something the sandbox forbids: {exc}") from exc
    except Exception as exc:  # the template's own error (a bad filter argument, 1/0…), not ours
        raise NodeFailure("template_render_failed",
                          f"The template failed while rendering: {type(exc).__name__}: {exc}") from exc
    return "".join(parts)


def resolve(call: NodeCall[TemplateConfig]) -> dict[str, Any]:
    return values_of(call.pool, {binding.variable: binding.value_selector for binding in call.config.variables})


def execute(call: NodeCall[TemplateConfig], inputs: dict[str, Any]) -> NodeOutput:
    return NodeOutput({"output": render(call.config.template, inputs)})


EXECUTOR = NodeExecutor(resolve, execute)
