"""template (Dify's template-transform): renders a Jinja2 template over its variables, in
Jinja2's immutable sandbox. The sandbox refuses unsafe attributes (anything starting with an
underscore, a function's internals…) and mutating lists and dicts; here such an access fails
the node (``template_forbidden``) instead of rendering as empty. Variables with no value are
None; undefined names render empty, as in Dify. The output is capped at
:data:`MAX_OUTPUT_CHARS` characters (Dify's default limit): rendering stops there and the node
fails (``template_output_too_large``), so a runaway loop cannot exhaust memory.

Rendering runs in the platform process: Jinja2's sandbox is made for untrusted templates
(no attribute of Python internals, no I/O, ranges capped), unlike code nodes, which run in
the separate sandbox. What the stock sandbox leaves open is exhausting that process, so the
operators and calls that can build a value out of proportion to the template are checked
before they run (``template_too_large``): a string or list over :data:`MAX_VALUE_ITEMS`
(``*``, ``+``, ``~``, ``%``, padding, ``replace``, ``join``, ``batch``…), an integer over
:data:`MAX_INT_BITS` (``**``, ``*``). And once the runner gives the node up (its timeout), the
next operation, call or ``range`` step stops the rendering instead of leaving a thread
spinning in the container."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
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


# The largest string or list a template may build (a 10 MB HTTP body passes through whole),
# and the largest integer (far past what prints: Python refuses str() past 4300 digits).
MAX_VALUE_ITEMS = 10_000_000
MAX_INT_BITS = 1 << 16
# Methods and filters whose integer arguments size what they build (a width, a count).
_SIZING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_SIZING_FILTERS = ("center", "indent", "batch", "slice", "wordwrap", "truncate")
_PRINTF_SIZE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_FORMAT_SPEC = re.compile(r"\{[^{}]*:((?:[^{}]|\{[^{}]*\})*)\}")
_rendering = threading.local()


def _too_large(what: str) -> NodeFailure:
    return NodeFailure("template_too_large",
                       f"The template builds {what}; templates shape text, so compute large values in a code node "
                       f"(limits: {MAX_VALUE_ITEMS} characters or items, {MAX_INT_BITS}-bit integers)",
                       details={"max_items": MAX_VALUE_ITEMS, "max_int_bits": MAX_INT_BITS})


def _checkpoint() -> None:
    """Stops a rendering its node was given up on (the runner's timeout)."""
    cancelled: threading.Event | None = getattr(_rendering, "cancelled", None)
    if cancelled is not None and cancelled.is_set():
        raise NodeFailure("node_timeout", "The template was stopped at the node's timeout")


def _size(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


def _check_int(value: Any, what: str) -> None:
    if isinstance(value, int) and abs(value) > MAX_VALUE_ITEMS:
        raise _too_large(f"{what} of {value}")


def _check_binop(operator: str, left: Any, right: Any) -> None:
    numbers = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and numbers and right > 0 and left.bit_length() * right > MAX_INT_BITS:
        raise _too_large(f"an integer of about {left.bit_length() * right} bits")
    if operator == "*":
        if numbers and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _too_large(f"an integer of about {left.bit_length() + right.bit_length()} bits")
        for seq, times in ((left, right), (right, left)):
            size = _size(seq)
            if size is not None and isinstance(times, int) and size * times > MAX_VALUE_ITEMS:
                raise _too_large(f"a value of {size * times} characters or items")
    if operator == "+":
        sizes = (_size(left), _size(right))
        if sizes[0] is not None and sizes[1] is not None and sizes[0] + sizes[1] > MAX_VALUE_ITEMS:
            raise _too_large(f"a value of {sizes[0] + sizes[1]} characters or items")
    if operator == "%" and isinstance(left, str):
        _check_printf(left, right)


def _check_printf(pattern: str, args: Any) -> None:
    for width, precision in _PRINTF_SIZE.findall(pattern):
        for number in (width, precision):
            if number.isdigit():
                _check_int(int(number), "a width or precision")
            elif number == "*":
                for arg in args if isinstance(args, tuple) else (args,):
                    _check_int(arg, "a width or precision")


def _check_format(pattern: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for spec in _FORMAT_SPEC.findall(pattern):
        for number in re.findall(r"\d+", spec):
            _check_int(int(number), "a width or precision")
        if "{" in spec:  # a nested field: the width comes from an argument
            for arg in (*args, *kwargs.values()):
                _check_int(arg, "a width or precision")


def _check_call(name: str, owner: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _SIZING_METHODS:
        for arg in (*args, *kwargs.values()):
            _check_int(arg, f"{name}()")
        if name == "expandtabs" and args and isinstance(args[0], int) and len(owner) * args[0] > MAX_VALUE_ITEMS:
            raise _too_large(f"a value of {len(owner) * args[0]} characters")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = owner.count(args[0]) if args[0] else len(owner) + 1
        if len(owner) + count * (len(args[1]) - len(args[0])) > MAX_VALUE_ITEMS:
            raise _too_large(f"a value of about {len(owner) + count * len(args[1])} characters")
    elif name in ("format", "format_map"):
        mapping = args[0] if name == "format_map" and args and isinstance(args[0], dict) else kwargs
        _check_format(owner, args if name == "format" else (), mapping)


def _check_join(separator: Any, items: list[Any]) -> None:
    size = _size(separator) or 0
    total = size * max(len(items) - 1, 0) + sum(_size(item) or 0 for item in items)
    if total > MAX_VALUE_ITEMS:
        raise _too_large(f"a value of {total} characters")


@functools.cache
def _environment() -> ImmutableSandboxedEnvironment:
    from jinja2 import filters, nodes
    from jinja2.compiler import CodeGenerator, Frame
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range
    from jinja2.utils import generate_lorem_ipsum

    class SizedConcat(CodeGenerator):
        # ``~`` joins in generated code, out of the sandbox's reach: routed through a check.
        def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
            self.write("environment.concat_checked((")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write("))")

    class StrictSandbox(ImmutableSandboxedEnvironment):
        code_generator_class = SizedConcat
        intercepted_binops = frozenset({"*", "**", "+", "%"})

        # The stock sandbox answers an undefined value for an unsafe attribute, which renders
        # as "" and hides the refusal; raising makes it visible to whoever wrote the template.
        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__} value is not allowed")

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            _checkpoint()
            _check_binop(operator, left, right)
            return super().call_binop(context, operator, left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _checkpoint()
            owner = getattr(__obj, "__self__", None)
            name = getattr(__obj, "__name__", "")
            if isinstance(owner, str):
                if name == "join" and args:
                    items = list(args[0])
                    _check_join(owner, items)
                    args = (items, *args[1:])
                _check_call(name, owner, args, kwargs)
            elif isinstance(getattr(getattr(__obj, "__wrapped__", None), "__self__", None), str):
                # str.format as the sandbox wraps it: the format string is the wrapped method's owner.
                wrapped = __obj.__wrapped__
                _check_call(wrapped.__name__, wrapped.__self__, args, kwargs)
            return super().call(__context, __obj, *args, **kwargs)

        def getattr(self, obj: Any, attribute: str) -> Any:
            _checkpoint()
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            _checkpoint()
            return super().getitem(obj, argument)

        def concat_checked(self, values: tuple[Any, ...]) -> str:
            _checkpoint()
            texts = [str(value) for value in values]
            _check_join("", texts)
            return "".join(texts)

    environment = StrictSandbox(autoescape=False)

    def sized_filter(name: str) -> Any:
        original = environment.filters[name]

        @functools.wraps(original)
        def checked(*args: Any, **kwargs: Any) -> Any:
            _checkpoint()
            for arg in (*args[1:], *kwargs.values()):
                if not isinstance(arg, bool):
                    _check_int(arg, f"the {name} filter's argument")
                if name in ("wordwrap", "indent", "slice", "batch") and isinstance(arg, str):
                    # The wrap string or indent or fill repeats once per line: bounded together.
                    subject = _size(args[0]) if args else None
                    if subject is not None and len(arg) * subject > MAX_VALUE_ITEMS:
                        raise _too_large(f"a value of about {len(arg) * subject} characters")
            return original(*args, **kwargs)

        return checked

    for name in _SIZING_FILTERS:
        environment.filters[name] = sized_filter(name)

    def checked_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
        _checkpoint()
        if isinstance(value, str) and isinstance(old, str) and isinstance(new, str):
            _check_call("replace", value, (old, new), {})
        return filters.do_replace(eval_ctx, value, old, new, count)

    def checked_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        _checkpoint()
        items = list(value)
        _check_join(d, items)
        return filters.do_join(eval_ctx, items, d, attribute)

    def checked_format(value: str, *args: Any, **kwargs: Any) -> str:
        _checkpoint()
        _check_printf(value, kwargs or args)
        return filters.do_format(value, *args, **kwargs)

    def stepped_range(*args: int) -> Iterator[int]:
        for number in safe_range(*args):
            _checkpoint()
            yield number

    def short_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
        _check_int(n * max, "lipsum")
        return str(generate_lorem_ipsum(n, html, min, max))

    checked_replace.jinja_pass_arg = filters.do_replace.jinja_pass_arg  # type: ignore[attr-defined]
    checked_join.jinja_pass_arg = filters.do_join.jinja_pass_arg  # type: ignore[attr-defined]
    environment.filters.update(replace=checked_replace, join=checked_join, format=checked_format)
    environment.globals.update(range=stepped_range, lipsum=short_lipsum)
    # Jinja2's defaults otherwise, as Dify renders (no autoescape, a final newline dropped).
    return environment


@functools.lru_cache(maxsize=_COMPILED_CACHE)
def _compiled(source: str) -> Template:
    return _environment().from_string(source)


def render(source: str, variables: dict[str, Any], max_chars: int = MAX_OUTPUT_CHARS,
           cancelled: threading.Event | None = None) -> str:
    """``source`` rendered over ``variables``; raises NodeFailure (``template_…``). Setting
    ``cancelled`` stops it at its next operation."""
    from jinja2.exceptions import SecurityError, TemplateSyntaxError

    try:
        template = _compiled(source)
    except TemplateSyntaxError as exc:
        raise NodeFailure("template_syntax_error", f"The template does not parse (line {exc.lineno}): {exc.message}",
                          details={"line": exc.lineno}) from exc
    parts: list[str] = []
    size = 0
    _rendering.cancelled = cancelled
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
    finally:
        _rendering.cancelled = None
    return "".join(parts)


def resolve(call: NodeCall[TemplateConfig]) -> dict[str, Any]:
    return values_of(call.pool, {binding.variable: binding.value_selector for binding in call.config.variables})


def execute(call: NodeCall[TemplateConfig], inputs: dict[str, Any]) -> NodeOutput:
    return NodeOutput({"output": render(call.config.template, inputs, cancelled=call.cancelled)})


EXECUTOR = NodeExecutor(resolve, execute)
