"""The edge's input checks (shared/validation.py) on their own: depth measured without
recursion, the NUL check iterative, strict types, URLs a client can call, binary text."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.knowledge.parsing.decoding import looks_binary
from shared.validation import MAX_JSON_DEPTH, HttpUrlStr, Int4, LaxUUID, RequestModel, json_depth


def test_depth_is_measured_without_recursion_and_ignores_strings() -> None:
    assert json_depth("1") == 0 and json_depth('{"a": [1, {"b": []}]}') == 4
    assert json_depth('["[[[", "\\"[[[", {"k": "}}}"}]') == 2
    assert json_depth(b"[" * 1_000_000) == 1_000_000  # malformed, but measured
    assert json_depth("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) == MAX_JSON_DEPTH


def test_depth_takes_linear_time_on_hostile_text() -> None:
    # Unclosed strings full of escaped quotes once made a string pattern retry from every quote.
    import time

    megabyte = 1_048_576
    for text in ('["' + '\\"' * (megabyte // 2), '"' + '\\"' * (megabyte // 2) + "\\", "[]" * (megabyte // 2),
                 '"x"' * (megabyte // 3)):
        started = time.perf_counter()
        json_depth(text)
        assert time.perf_counter() - started < 3, text[:10]


class _Body(RequestModel):
    data: dict[str, object] | list[object] | None = None
    count: Int4 = 0
    ref: LaxUUID | None = None
    url: HttpUrlStr | None = None


def test_nul_check_is_iterative() -> None:
    value: object = "\x00"
    for _ in range(50_000):
        value = [value]
    with pytest.raises(ValidationError, match="NUL"):
        _Body.model_validate({"data": {"deep": value}})


def test_types_are_strict_but_json_strings_still_parse() -> None:
    for wrong in ("2", True, 2.0):
        with pytest.raises(ValidationError):
            _Body.model_validate({"count": wrong})
    with pytest.raises(ValidationError):
        _Body.model_validate({"count": 2**31})
    assert _Body.model_validate({"count": 2**31 - 1, "ref": "6f1c2c9e-3b0a-4a5e-9d6e-0c6b1f1d2a3b"}).ref is not None


@pytest.mark.parametrize("url", ["http://[::1/", "http://exa mple/", "http://h:99999/", "http://:1/", "ftp://h/",
                                 "http://a..b/", "http://[zz::1]/", "http://host\t/"])
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        _Body.model_validate({"url": url})


@pytest.mark.parametrize("url", ["http://localhost:8080/v1", "https://api.openai.com/v1", "http://[::1]:9/x",
                                 "http://10.0.0.1/", "http://my_service:80"])
def test_well_formed_urls_pass(url: str) -> None:
    assert _Body.model_validate({"url": url}).url == url


def test_binary_text_is_told_from_text() -> None:
    assert looks_binary("\x01\x02\x03\x04" * 50)
    assert looks_binary("\ufffd" * 40 + "abc")
    assert not looks_binary("Columns\tare\ttabs.\x07 one bell\n" * 10)
    assert not looks_binary("知识库将文档切分成片段并计算向量以便检索。")


def _request_models() -> list[type[RequestModel]]:
    import importlib
    import pkgutil

    import shared

    for module in pkgutil.walk_packages(shared.__path__, "shared."):
        importlib.import_module(module.name)
    found: list[type[RequestModel]] = []
    pending: list[type[RequestModel]] = [RequestModel]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return found


def test_types_json_carries_as_strings_are_lax_in_every_request_model() -> None:
    # Powertools validates the decoded body (Python objects): under strict mode an id, a time, a
    # decimal or an enum member would have to be an instance, and JSON only has its string.
    import datetime
    import decimal
    import enum
    import typing
    import uuid

    def strict_strings(annotation: object, lax: bool = False) -> typing.Iterator[object]:
        args = typing.get_args(annotation)
        if typing.get_origin(annotation) is typing.Annotated:
            lax = lax or any(getattr(meta, "strict", None) is False for meta in annotation.__metadata__)  # type: ignore[attr-defined]
            yield from strict_strings(args[0], lax)
            return
        if isinstance(annotation, type) and issubclass(
                annotation, enum.Enum | uuid.UUID | datetime.date | datetime.time | decimal.Decimal) and not lax:
            yield annotation
        for arg in args:
            yield from strict_strings(arg, lax)

    models = _request_models()
    assert len(models) > 20
    strict = [f"{model.__name__}.{name}: {found}" for model in models for name, field in model.model_fields.items()
              for found in strict_strings(field.annotation, any(getattr(meta, "strict", None) is False
                                                                 for meta in field.metadata))]
    assert strict == []


def test_a_nul_character_is_refused_naming_where_it_is() -> None:
    with pytest.raises(ValidationError, match=r"data\.rows\[1\]\.note holds a NUL"):
        _Body.model_validate({"data": {"rows": [{"note": "fine"}, {"note": "bad\x00"}]}})
