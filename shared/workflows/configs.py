"""Each node type's configuration (``Node.config``) and the outputs it declares.

Field names follow Dify's node data where Dify has one (``variable_selector``,
``comparison_operator``, ``prompt_template``...), so imported and hand-written documents read
alike. ``outputs_of`` says what a node of each type answers: what selectors may name
downstream, with its type.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.validation import RequestModel
from shared.workflows.definition import (
    ELSE_HANDLE,
    FAIL_BRANCH_HANDLE,
    NODE_ID,
    SOURCE_HANDLE,
    VARIABLE_NAME,
    Node,
    NodeType,
    Selector,
    VarType,
)
from shared.workflows.variables import TEMPLATE_REFERENCE

MAX_TEMPLATE_CHARS = 100_000
# Containers run in-process, inside their node's invocation (bounded by its 900 s timeout):
# the most rounds of a loop, the most items an iteration runs at once. The longest list an
# iteration takes: a run's interpreter sends a list longer than its inline bound (the
# ``workflow_iteration_inline_items`` setting) through a Distributed Map (docs/adr/0038).
MAX_ITERATION_ITEMS = 10_000
MAX_LOOP_COUNT = 1_000
MAX_PARALLEL_ITEMS = 10
SelectorField = Field(min_length=2, max_length=10)
# A selector inside a list (the aggregator's): the same bounds.
ListedSelector = Annotated[Selector, Field(min_length=2, max_length=10)]
# A run output's name (an end node's ``variable``): only the run's answer names it, never a
# selector, so it may start with a digit (Dify's own fixtures name outputs "1", "2", "3").
OUTPUT_NAME = r"^[A-Za-z0-9_]{1,64}$"
# Text whose whitespace is meaning (code, templates, prompt text, condition values, request
# bodies): not stripped, unlike names and identifiers.
VERBATIM = ConfigDict(**{**RequestModel.model_config, "str_strip_whitespace": False})


# -- start / end -------------------------------------------------------------------------------
class InputVariable(RequestModel):
    """A run input, declared on the start node."""

    variable: str = Field(pattern=VARIABLE_NAME)
    label: str = Field(default="", max_length=200)
    type: VarType = "string"
    required: bool = False
    # Used when the input is absent (a required input with a default is never absent).
    default: Any = None
    # Allowed values (strings and numbers): a select list.
    options: list[str | int | float] = Field(default_factory=list, max_length=100)
    # Strings: the longest value accepted.
    max_length: int | None = Field(default=None, ge=1, le=1_000_000)
    description: str = Field(default="", max_length=1000)


class StartConfig(RequestModel):
    variables: list[InputVariable] = Field(default_factory=list, max_length=50)


class OutputBinding(RequestModel):
    """An output of the run (on an end node), taken from a selector."""

    variable: str = Field(pattern=OUTPUT_NAME)
    value_selector: Selector = SelectorField
    # Declared for editors and export; the value is passed as it is.
    value_type: VarType | None = None


class EndConfig(RequestModel):
    outputs: list[OutputBinding] = Field(default_factory=list, max_length=100)


# -- llm ---------------------------------------------------------------------------------------
class ModelRef(RequestModel):
    # Stop sequences are whitespace more often than not ("\n\n"): kept as written.
    model_config = VERBATIM

    # The tenant's model of that name; None: the tenant's default chat model.
    name: str | None = Field(default=None, max_length=100)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    stop: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=4)


class PromptMessage(RequestModel):
    model_config = VERBATIM

    role: Literal["system", "user", "assistant"]
    # Text with {{#node.field#}} references.
    text: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)


class ContextSettings(RequestModel):
    """A variable (knowledge retrieval results, or any text) given to the prompt as
    ``{{#context#}}``."""

    enabled: bool = False
    variable_selector: list[str] = Field(default_factory=list, max_length=10)


class StructuredOutput(RequestModel):
    enabled: bool = False
    # The JSON schema the answer must match (an object schema).
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")

    model_config = {**RequestModel.model_config, "populate_by_name": True}


class LlmConfig(RequestModel):
    model: ModelRef = Field(default_factory=ModelRef)
    prompt_template: list[PromptMessage] = Field(min_length=1, max_length=50)
    context: ContextSettings = Field(default_factory=ContextSettings)
    structured_output: StructuredOutput = Field(default_factory=StructuredOutput)


# -- knowledge retrieval -----------------------------------------------------------------------
class RetrievalConfig(RequestModel):
    mode: Literal["semantic", "full_text", "hybrid"] = "hybrid"
    top_k: int = Field(default=4, ge=1, le=50)
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    # Hybrid: weight of the semantic ranking.
    semantic_weight: float = Field(default=0.7, ge=0, le=1)
    rerank: bool = False


class KnowledgeRetrievalConfig(RequestModel):
    query_variable_selector: Selector = SelectorField
    knowledge_base_ids: list[str] = Field(min_length=1, max_length=10)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)


# -- if/else -----------------------------------------------------------------------------------
ComparisonOperator = Literal[
    "contains", "not contains", "start with", "end with", "is", "is not", "empty", "not empty",
    "in", "not in", "all of", "=", "≠", ">", "<", "≥", "≤", "null", "not null"]
# Operators that take no value.
UNARY_OPERATORS = frozenset({"empty", "not empty", "null", "not null"})


class Condition(RequestModel):
    model_config = VERBATIM

    variable_selector: Selector = SelectorField
    comparison_operator: ComparisonOperator
    # A constant (strings may hold {{#...#}} references), a list for in/not in/all of.
    value: str | int | float | bool | list[str | int | float] | None = None

    @model_validator(mode="after")
    def _value_present(self) -> Condition:
        if self.comparison_operator not in UNARY_OPERATORS and self.value is None:
            raise ValueError(f"operator {self.comparison_operator!r} needs a value")
        return self


class Case(RequestModel):
    # The handle its branch leaves from.
    case_id: str = Field(pattern=NODE_ID)
    logical_operator: Literal["and", "or"] = "and"
    conditions: list[Condition] = Field(min_length=1, max_length=50)


class IfElseConfig(RequestModel):
    """Cases in order; the first that holds picks its ``case_id`` handle, none picks ``false``."""

    cases: list[Case] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _distinct_cases(self) -> IfElseConfig:
        ids = [case.case_id for case in self.cases]
        if len(ids) != len(set(ids)):
            raise ValueError("case_id must not repeat")
        if ELSE_HANDLE in ids:
            raise ValueError(f"case_id {ELSE_HANDLE!r} is the else branch's handle")
        return self


# -- code / template ---------------------------------------------------------------------------
class VariableBinding(RequestModel):
    """A name the code or template sees, bound to a selector."""

    variable: str = Field(pattern=VARIABLE_NAME)
    value_selector: Selector = SelectorField


class CodeOutput(RequestModel):
    type: VarType


class CodeConfig(RequestModel):
    model_config = VERBATIM

    code_language: Literal["python3"] = "python3"
    code: str = Field(min_length=1, max_length=MAX_TEMPLATE_CHARS)
    variables: list[VariableBinding] = Field(default_factory=list, max_length=50)
    outputs: dict[str, CodeOutput] = Field(min_length=1, max_length=50)


class TemplateConfig(RequestModel):
    model_config = VERBATIM

    # Jinja2 (sandboxed), over ``variables``.
    template: str = Field(max_length=MAX_TEMPLATE_CHARS)
    variables: list[VariableBinding] = Field(default_factory=list, max_length=50)


# -- answer (chatflows) ---------------------------------------------------------------------------
class AnswerConfig(RequestModel):
    """A chatflow's reply text: ``{{#node.field#}}`` references between literal text, streamed to
    the chat as soon as what it names is known (docs/workflows.md §12)."""

    model_config = VERBATIM

    answer: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)


# -- http request ------------------------------------------------------------------------------
class KeyValue(RequestModel):
    key: str = Field(min_length=1, max_length=500)
    value: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)


class BodyField(RequestModel):
    """A form field (``text`` holds a template; ``file`` is not supported yet)."""

    model_config = VERBATIM

    key: str = Field(default="", max_length=500)
    type: Literal["text"] = "text"
    value: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)


class HttpBody(RequestModel):
    model_config = VERBATIM

    type: Literal["none", "json", "raw-text", "form-data", "x-www-form-urlencoded"] = "none"
    # json / raw-text: the text (a template); forms: the fields.
    data: str | list[BodyField] = ""


class HttpAuth(RequestModel):
    type: Literal["no-auth", "api-key"] = "no-auth"
    # api-key: how the key is sent.
    scheme: Literal["bearer", "basic", "custom"] = "bearer"
    # custom: the header that carries it.
    header: str = Field(default="Authorization", max_length=200)
    api_key: str = Field(default="", max_length=10_000)


class HttpTimeouts(RequestModel):
    connect_s: float = Field(default=10, gt=0, le=60)
    read_s: float = Field(default=60, gt=0, le=600)
    write_s: float = Field(default=20, gt=0, le=600)


class HttpRequestConfig(RequestModel):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    # A template: references are rendered before the request.
    url: str = Field(min_length=1, max_length=8000)
    headers: list[KeyValue] = Field(default_factory=list, max_length=100)
    params: list[KeyValue] = Field(default_factory=list, max_length=100)
    body: HttpBody = Field(default_factory=HttpBody)
    authorization: HttpAuth = Field(default_factory=HttpAuth)
    timeout: HttpTimeouts = Field(default_factory=HttpTimeouts)
    # The largest response body read (bytes); past it the node fails.
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1, le=50 * 1024 * 1024)
    follow_redirects: bool = True


# -- variable aggregator -----------------------------------------------------------------------
class AggregatorGroup(RequestModel):
    group_name: str = Field(pattern=VARIABLE_NAME)
    output_type: VarType = "string"
    variables: list[ListedSelector] = Field(min_length=1, max_length=50)


class VariableAggregatorConfig(RequestModel):
    """Answers the first of ``variables`` that has a value (the branch that ran), as
    ``output``; with groups, one ``{group_name: {"output": ...}}`` per group."""

    output_type: VarType = "string"
    variables: list[ListedSelector] = Field(default_factory=list, max_length=50)
    groups: list[AggregatorGroup] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _something_to_aggregate(self) -> VariableAggregatorConfig:
        if not self.variables and not self.groups:
            raise ValueError("give variables, or groups of variables")
        names = [group.group_name for group in self.groups]
        if len(names) != len(set(names)):
            raise ValueError("group_name must not repeat")
        return self


# -- containers: iteration, loop, and the nodes inside them ------------------------------------
# A declared array type, nested ones included (Dify declares ``array[array[number]]``).
ARRAY_TYPE = r"^array\[[a-z\[\]]{1,40}\]$"


class IterationConfig(RequestModel):
    """Runs the sub-graph of its children once per item of ``iterator_selector`` (the children
    read ``[iteration_id, "item"]`` and ``[iteration_id, "index"]``) and answers ``output``: the
    value of ``output_selector`` (a child's output) of each item, in item order."""

    start_node_id: str = Field(pattern=NODE_ID)
    iterator_selector: Selector = SelectorField
    # Empty: nothing collected (a draft); validation asks for it.
    output_selector: list[str] = Field(default_factory=list, max_length=10)
    # The declared type of ``output`` (None: the collected output's type, as an array).
    output_type: str | None = Field(default=None, pattern=ARRAY_TYPE)
    is_parallel: bool = False
    # Items run at once when parallel.
    parallel_nums: int = Field(default=MAX_PARALLEL_ITEMS, ge=1, le=MAX_PARALLEL_ITEMS)
    # terminated: an item's failure fails the node; continue-on-error: its output is None;
    # remove-abnormal-output: its output is left out.
    error_handle_mode: Literal["terminated", "continue-on-error", "remove-abnormal-output"] = "terminated"
    # When every collected output is a list, answer them concatenated (Dify's default).
    flatten_output: bool = True


class LoopVariable(RequestModel):
    """A variable of the loop (children read and assign ``[loop_id, label]``), set before the
    first round from a constant or a variable."""

    label: str = Field(pattern=VARIABLE_NAME)
    var_type: VarType
    value_type: Literal["constant", "variable"] = "constant"
    # constant: a value of ``var_type``; variable: a selector.
    value: Any = None

    @model_validator(mode="after")
    def _selector_for_variable(self) -> LoopVariable:
        if self.value_type == "variable" and not (
                isinstance(self.value, list) and 2 <= len(self.value) <= 10
                and all(isinstance(part, str) and part for part in self.value)):
            raise ValueError("a variable's value is a selector: a node and one of its outputs")
        return self


class LoopConfig(RequestModel):
    """Runs the sub-graph of its children round after round: until ``break_conditions`` hold
    (checked before the first round and after each), a ``loop_end`` child is reached, or
    ``loop_count`` rounds ran. Answers its variables' last values and ``loop_round``."""

    start_node_id: str = Field(pattern=NODE_ID)
    loop_count: int = Field(default=10, ge=1, le=MAX_LOOP_COUNT)
    loop_variables: list[LoopVariable] = Field(default_factory=list, max_length=50)
    break_conditions: list[Condition] = Field(default_factory=list, max_length=50)
    logical_operator: Literal["and", "or"] = "and"


class EmptyConfig(RequestModel):
    """The start node of a container, and a loop's ``loop_end``: no configuration."""


AssignOperation = Literal["over-write", "clear", "append", "extend", "set", "+=", "-=", "*=", "/=", "remove-first",
                          "remove-last"]
# Operations that take no value.
VALUELESS_OPERATIONS = frozenset({"clear", "remove-first", "remove-last"})


class AssignItem(RequestModel):
    model_config = VERBATIM

    # The variable changed: a loop variable of an enclosing loop (``[loop_id, label]``), or in a
    # chatflow a conversation variable (``["conversation", name]``).
    variable_selector: Selector = SelectorField
    operation: AssignOperation = "over-write"
    input_type: Literal["variable", "constant"] = "variable"
    # variable: a selector; constant: the value.
    value: Any = None

    @model_validator(mode="after")
    def _value_shape(self) -> AssignItem:
        if self.operation in VALUELESS_OPERATIONS or self.input_type == "constant":
            return self
        if not (isinstance(self.value, list) and 2 <= len(self.value) <= 10
                and all(isinstance(part, str) and part for part in self.value)):
            raise ValueError(f"operation {self.operation!r} with a variable input takes a selector as its value")
        return self


class AssignerConfig(RequestModel):
    """Changes variables, one item after the other (Dify's variable assigner, v2; v1 imports as
    one item)."""

    items: list[AssignItem] = Field(min_length=1, max_length=50)
# -- question classifier -----------------------------------------------------------------------
class ClassifierClass(RequestModel):
    """A class the model may pick; its id is the handle the branch leaves from."""

    id: str = Field(pattern=NODE_ID)
    # What the model reads: a label, or a description of what belongs in the class.
    name: str = Field(min_length=1, max_length=2000)


class QuestionClassifierConfig(RequestModel):
    """The model picks one of ``classes`` for the query's text; the run continues on the
    edges leaving by that class's ``id``."""

    model_config = VERBATIM

    query_variable_selector: Selector = SelectorField
    model: ModelRef = Field(default_factory=ModelRef)
    classes: list[ClassifierClass] = Field(min_length=1, max_length=50)
    # Extra guidance for the model (a template: {{#node.field#}} references).
    instruction: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)

    @model_validator(mode="after")
    def _distinct_classes(self) -> QuestionClassifierConfig:
        ids = [item.id for item in self.classes]
        if len(ids) != len(set(ids)):
            raise ValueError("class ids must not repeat (each is the handle of its branch)")
        reserved = sorted(set(ids) & {SOURCE_HANDLE, FAIL_BRANCH_HANDLE})
        if reserved:
            raise ValueError(f"class id {reserved[0]!r} is reserved for another exit; pick another id")
        return self


# -- parameter extractor -----------------------------------------------------------------------
ParameterType = Literal["string", "number", "boolean", "array[string]", "array[number]", "array[boolean]",
                        "array[object]"]
# Outputs every parameter extractor answers beside its parameters (Dify's names).
EXTRACTOR_OUTPUTS: dict[str, str] = {"__is_success": "number", "__reason": "string", "__usage": "object"}


class ExtractedParameter(RequestModel):
    name: str = Field(pattern=VARIABLE_NAME)
    type: ParameterType = "string"
    # Tells the model what to look for.
    description: str = Field(default="", max_length=2000)
    required: bool = False
    # Strings only: the values allowed (Dify's "select" parameters).
    options: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _fits(self) -> ExtractedParameter:
        if self.name in EXTRACTOR_OUTPUTS:
            raise ValueError(f"{self.name!r} is reserved: the node answers it itself")
        if self.options and self.type != "string":
            raise ValueError("only string parameters take options")
        return self


class ParameterExtractorConfig(RequestModel):
    """The model reads the ``query`` variable's text and answers each parameter, by function
    calling (a tool whose arguments are the parameters) or by a JSON answer (``prompt``)."""

    model_config = VERBATIM

    # Dify's name: the selector of the text to extract from.
    query: Selector = SelectorField
    model: ModelRef = Field(default_factory=ModelRef)
    parameters: list[ExtractedParameter] = Field(min_length=1, max_length=50)
    # Extra guidance for the model (a template: {{#node.field#}} references).
    instruction: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    # function_call: through the model's tool calling when it has it (else as prompt).
    reasoning_mode: Literal["function_call", "prompt"] = "function_call"


# -- list operator -----------------------------------------------------------------------------
ListType = Literal["array[string]", "array[number]", "array[boolean]", "array[object]"]
_SERIAL = re.compile(r"^-?[0-9]{1,9}$")


class ListFilterCondition(RequestModel):
    """An item is kept when the comparison (the if/else operators) holds for it: the item
    itself, or for a list of objects the field ``key`` names (a dotted path for nested fields)."""

    model_config = VERBATIM

    key: str = Field(default="", max_length=200)
    comparison_operator: ComparisonOperator
    value: str | int | float | bool | list[str | int | float] | None = None

    @model_validator(mode="after")
    def _value_present(self) -> ListFilterCondition:
        # A name: trimmed, unlike the value (VERBATIM keeps whitespace for the value's sake).
        self.key = self.key.strip()
        if self.comparison_operator not in UNARY_OPERATORS and self.value is None:
            raise ValueError(f"operator {self.comparison_operator!r} needs a value")
        return self


class ListFilter(RequestModel):
    enabled: bool = False
    # All must hold (applied one after the other, as Dify does).
    conditions: list[ListFilterCondition] = Field(default_factory=list, max_length=50)


class ListOrder(RequestModel):
    enabled: bool = False
    # A list of objects: the field sorted on (a dotted path for nested fields).
    key: str = Field(default="", max_length=200)
    value: Literal["asc", "desc"] = "asc"


class ListLimit(RequestModel):
    enabled: bool = False
    # The first ``size`` items are kept.
    size: int = Field(default=10, ge=1, le=100_000)


class ListExtract(RequestModel):
    enabled: bool = False
    # The item kept: 1-based as in Dify ("1" the first), negative from the end ("-1" the last),
    # or a {{#node.field#}} reference to a number.
    serial: str = Field(default="1", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _serial(self) -> ListExtract:
        serial = self.serial
        is_reference = bool(TEMPLATE_REFERENCE.search(serial)) and not TEMPLATE_REFERENCE.sub("", serial).strip()
        if not is_reference and not (_SERIAL.match(serial) and int(serial) != 0):
            raise ValueError("serial is a position: 1 for the first item, -1 for the last, or a {{#node.field#}} "
                             "reference to one")
        return self


class ListOperatorConfig(RequestModel):
    """Filter, then extract one item, then sort, then keep the first ``limit.size`` (Dify's
    order of operations) of the list ``variable`` (of type ``var_type``)."""

    variable: Selector = SelectorField
    var_type: ListType = "array[string]"
    filter_by: ListFilter = Field(default_factory=ListFilter)
    order_by: ListOrder = Field(default_factory=ListOrder)
    limit: ListLimit = Field(default_factory=ListLimit)
    extract_by: ListExtract = Field(default_factory=ListExtract)

    @model_validator(mode="after")
    def _keys(self) -> ListOperatorConfig:
        if self.var_type == "array[object]":
            if self.filter_by.enabled and any(not condition.key for condition in self.filter_by.conditions):
                raise ValueError("a list of objects is filtered on a field: give each condition its key")
            if self.order_by.enabled and not self.order_by.key:
                raise ValueError("a list of objects is sorted on a field: give order_by its key")
        return self

    @property
    def item_type(self) -> str:
        return self.var_type[6:-1]


# -- document extractor ------------------------------------------------------------------------
class DocumentExtractorConfig(RequestModel):
    """Extracts the text of a file (an object: a file reference, docs/workflows.md) or, with
    ``is_array_file``, of each file of a list."""

    variable_selector: Selector = SelectorField
    # The variable holds a list of files: ``text`` is then a list, one text per file.
    is_array_file: bool = False


# -- human input -------------------------------------------------------------------------------
FormFieldType = Literal["text", "paragraph", "number", "select", "boolean"]
# The variable type each form field answers.
FORM_FIELD_TYPES: dict[str, str] = {"text": "string", "paragraph": "string", "select": "string", "number": "number",
                                    "boolean": "boolean"}
# The longest a person may wait: a pause keeps its execution open (Standard executions last up
# to a year; the run's other steps need the rest).
MAX_PAUSE_S = 90 * 24 * 3600
# The output naming the action a person chose (a form with actions).
ACTION_OUTPUT = "action_id"


class FormField(RequestModel):
    """One field of a human input form: the answer's value of that name, and the node's output."""

    name: str = Field(pattern=VARIABLE_NAME)
    label: str = Field(default="", max_length=200)
    type: FormFieldType = "text"
    required: bool = False
    # The value taken when the field is left out, and on a timeout with ``on_timeout: default``.
    default: Any = None
    # select: the values allowed.
    options: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(default_factory=list, max_length=100)
    # text, paragraph: the longest answer accepted.
    max_length: int | None = Field(default=None, ge=1, le=100_000)

    @property
    def var_type(self) -> str:
        return FORM_FIELD_TYPES[self.type]


class FormAction(RequestModel):
    """A button of the form (Dify's user action): the person picks one, and its ``id`` is the
    handle the run leaves by."""

    id: str = Field(pattern=VARIABLE_NAME)
    title: str = Field(default="", max_length=200)


class HumanInputConfig(RequestModel):
    """Pauses the run until a person answers ``fields`` (POST /api/v1/workflow-runs/{id}/resume);
    the node answers each field's value (and ``action_id`` with actions). Without an answer
    after ``timeout_s``: ``on_timeout`` ``default`` answers each field's default (the first
    action's handle), ``fail`` fails the node (``human_input_timeout``)."""

    model_config = VERBATIM

    # What the person reads above the fields (a template: {{#node.field#}} references are
    # rendered when the run pauses).
    form_content: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    fields: list[FormField] = Field(default_factory=list, max_length=50)
    # None: a form without buttons (it leaves by ``source``).
    actions: list[FormAction] = Field(default_factory=list, max_length=10)
    # Seconds the run waits for the answer; None: until the run's execution ends.
    timeout_s: int | None = Field(default=None, ge=1, le=MAX_PAUSE_S)
    on_timeout: Literal["default", "fail"] = "fail"

    @model_validator(mode="after")
    def _distinct(self) -> HumanInputConfig:
        names = [item.name for item in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("field names must not repeat")
        if ACTION_OUTPUT in names:
            raise ValueError(f"{ACTION_OUTPUT!r} is reserved: the node answers the chosen action under it")
        ids = [action.id for action in self.actions]
        if len(ids) != len(set(ids)):
            raise ValueError("action ids must not repeat (each is the handle of its branch)")
        reserved = sorted(set(ids) & {SOURCE_HANDLE, FAIL_BRANCH_HANDLE})
        if reserved:
            raise ValueError(f"action id {reserved[0]!r} is reserved for another exit; pick another id")
        return self


# -- sub-workflow ------------------------------------------------------------------------------
# How deep sub-workflows may call sub-workflows (the run's own workflow is depth 0).
MAX_SUB_WORKFLOW_DEPTH = 5


class SubWorkflowOutput(RequestModel):
    """An output of the called workflow (an end node's output name) the node answers."""

    variable: str = Field(pattern=VARIABLE_NAME)
    type: VarType | None = None


class SubWorkflowConfig(RequestModel):
    """Runs a published version of another workflow of the tenant, inline, and answers its
    outputs. ``inputs`` map the called workflow's start variables to selectors of this run."""

    # The called workflow (an id of the tenant's).
    workflow_id: str = Field(min_length=1, max_length=64)
    # A published version number; None: the latest published version when the node runs.
    version: int | None = Field(default=None, ge=1, le=2_147_483_647)
    inputs: list[VariableBinding] = Field(default_factory=list, max_length=50)
    # The called workflow's outputs this node answers (downstream nodes read them).
    outputs: list[SubWorkflowOutput] = Field(default_factory=list, max_length=100)


# -- tool and agent ----------------------------------------------------------------------------
# A tool's answer kept on the node (the tools' own cap for agents is smaller: a model reads it).
MAX_TOOL_OUTPUT_CHARS = 1_000_000
# What a tool node answers besides the fields it declares (docs/workflows.md §13).
TOOL_OUTPUTS: dict[str, str | None] = {"text": "string", "json": None, "status": "string"}
# What an agent node answers.
AGENT_OUTPUTS: dict[str, str | None] = {"text": "string", "tokens": "number"}
# An argument's name: a JSON schema property name (OpenAPI parameter names may hold "-" or ".").
ARGUMENT_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"


class ToolArgument(RequestModel):
    """One argument of a tool call: a ``constant`` (any JSON value), a ``selector`` (a variable of
    the run, as it is) or a ``template`` (text with ``{{#node.field#}}`` references; given as
    text, or as the number, boolean, object or array the tool's schema asks for when the rendered
    text reads as one)."""

    model_config = VERBATIM

    type: Literal["constant", "selector", "template"] = "constant"
    value: Any = None

    @model_validator(mode="after")
    def _value_fits(self) -> ToolArgument:
        if self.type == "selector":
            if not (isinstance(self.value, list) and 2 <= len(self.value) <= 10
                    and all(isinstance(part, str) and part for part in self.value)):
                raise ValueError("a selector argument's value is a selector: [node id, output, path...]")
        elif self.type == "template" and not (isinstance(self.value, str) and len(self.value) <= MAX_TEMPLATE_CHARS):
            raise ValueError(f"a template argument's value is text (at most {MAX_TEMPLATE_CHARS} characters)")
        return self


class ToolOutputField(RequestModel):
    """A field of the tool's JSON object answer that the node answers as an output of its own
    (None when the answer has no such field)."""

    variable: str = Field(pattern=VARIABLE_NAME)
    type: VarType | None = None


class ToolConfig(RequestModel):
    """Calls one tool of the tenant's (docs/tools.md): an OpenAPI or MCP provider's
    (``<provider id>/<tool>``), a built-in (``builtin/<name>``) or a published workflow
    (``workflow/<workflow id>``), with ``arguments`` by name."""

    tool: str = Field(min_length=1, max_length=300)
    arguments: dict[Annotated[str, Field(pattern=ARGUMENT_NAME)], ToolArgument] = Field(
        default_factory=dict, max_length=100)
    outputs: list[ToolOutputField] = Field(default_factory=list, max_length=50)
    # For editors and the Dify export: the provider's name when the node was made.
    provider_name: str = Field(default="", max_length=200)


class AgentNodeConfig(RequestModel):
    """A published agent of the tenant answers ``prompt`` (a template) as it answers a chat
    message, without a conversation; ``inputs`` fill its system prompt's variables (templates)."""

    model_config = VERBATIM

    # The agent: its id, or a built-in agent's slug.
    agent_id: str = Field(min_length=1, max_length=100)
    prompt: str = Field(default="", max_length=MAX_TEMPLATE_CHARS)
    inputs: dict[Annotated[str, Field(pattern=VARIABLE_NAME)], Annotated[str, Field(max_length=10_000)]] = Field(
        default_factory=dict, max_length=20)


CONFIGS: dict[str, type[BaseModel]] = {
    "start": StartConfig,
    "end": EndConfig,
    "llm": LlmConfig,
    "knowledge_retrieval": KnowledgeRetrievalConfig,
    "if_else": IfElseConfig,
    "code": CodeConfig,
    "template": TemplateConfig,
    "http_request": HttpRequestConfig,
    "variable_aggregator": VariableAggregatorConfig,
    "iteration": IterationConfig,
    "iteration_start": EmptyConfig,
    "loop": LoopConfig,
    "loop_start": EmptyConfig,
    "loop_end": EmptyConfig,
    "assigner": AssignerConfig,
    "question_classifier": QuestionClassifierConfig,
    "parameter_extractor": ParameterExtractorConfig,
    "list_operator": ListOperatorConfig,
    "document_extractor": DocumentExtractorConfig,
    "human_input": HumanInputConfig,
    "sub_workflow": SubWorkflowConfig,
    "answer": AnswerConfig,
    "tool": ToolConfig,
    "agent": AgentNodeConfig,
}

# Seconds a node may run (an attempt) unless the node says otherwise. A container's covers all
# its children's runs: the most a node may have.
DEFAULT_TIMEOUT_S: dict[str, int] = {
    "start": 10, "end": 10, "if_else": 10, "template": 10, "variable_aggregator": 10,
    "code": 30, "http_request": 120, "knowledge_retrieval": 60, "llm": 300,
    "iteration": 900, "loop": 900, "iteration_start": 10, "loop_start": 10, "loop_end": 10, "assigner": 10,
    "list_operator": 10, "document_extractor": 120, "question_classifier": 300, "parameter_extractor": 300,
    # A human input's wait is its config's timeout_s, not a node attempt's.
    "human_input": 10, "sub_workflow": 900, "answer": 10,
    # A tool's own timeout (30 s by default, at most 300) bounds its call too.
    "tool": 300, "agent": 300,
}


def parse_config(node_type: NodeType | str, config: dict[str, Any]) -> BaseModel:
    """The node's configuration as its type's model (raises pydantic's ValidationError)."""
    return CONFIGS[node_type].model_validate(config)


def outputs_of(node: Node, config: BaseModel | None = None) -> dict[str, str | None]:
    """Output name → type (None: known only from the graph) that a node of this type and
    configuration answers. ``object`` outputs may be read further by path
    (``["node", "usage", "total_tokens"]``). A container's children see other names under its
    id (:func:`inner_outputs_of`)."""
    config = config if config is not None else parse_config(node.type, node.config)
    match config:
        case StartConfig():
            return {variable.variable: variable.type for variable in config.variables}
        case EndConfig():
            return {}
        case LlmConfig():
            outputs: dict[str, str | None] = {"text": "string", "usage": "object", "finish_reason": "string"}
            if config.structured_output.enabled:
                outputs["structured_output"] = "object"
            return outputs
        case KnowledgeRetrievalConfig():
            return {"result": "array[object]"}
        case IfElseConfig():
            return {"result": "boolean", "selected_case_id": "string"}
        case CodeConfig():
            return {name: output.type for name, output in config.outputs.items()}
        case TemplateConfig():
            return {"output": "string"}
        case HttpRequestConfig():
            return {"status_code": "number", "body": "string", "headers": "object"}
        case VariableAggregatorConfig():
            if config.groups:
                return {group.group_name: "object" for group in config.groups}
            return {"output": config.output_type}
        case IterationConfig():
            return {"output": iteration_output_type(config, None)}
        case LoopConfig():
            return {**{variable.label: variable.var_type for variable in config.loop_variables},
                    "loop_round": "number"}
        case EmptyConfig() | AssignerConfig():
            return {}
        case QuestionClassifierConfig():
            return {"class_name": "string", "class_id": "string", "usage": "object"}
        case ParameterExtractorConfig():
            return {**{parameter.name: parameter.type for parameter in config.parameters}, **EXTRACTOR_OUTPUTS}
        case ListOperatorConfig():
            return {"result": config.var_type, "first_record": config.item_type, "last_record": config.item_type}
        case DocumentExtractorConfig():
            return {"text": "array[string]" if config.is_array_file else "string"}
        case HumanInputConfig():
            answered: dict[str, str | None] = {item.name: item.var_type for item in config.fields}
            if config.actions:
                answered[ACTION_OUTPUT] = "string"
            return answered
        case SubWorkflowConfig():
            return {output.variable: output.type for output in config.outputs}
        case AnswerConfig():
            return {"answer": "string"}
        case ToolConfig():
            return {**{field.variable: field.type for field in config.outputs}, **TOOL_OUTPUTS}
        case AgentNodeConfig():
            return dict(AGENT_OUTPUTS)
    raise TypeError(f"no outputs known for {type(config).__name__}")


# Outputs every node answers under the default_value strategy when it failed.
ERROR_OUTPUTS = {"error_message": "string", "error_type": "string"}


def iteration_output_type(config: IterationConfig, collected: str | None) -> str | None:
    """The type of an iteration's ``output``: the declared one, else an array of the collected
    output's type (``collected``, None: unknown); flattened when flatten_output would flatten."""
    declared = config.output_type
    if declared is None and collected is not None:
        declared = f"array[{collected}]"
    if declared is not None and config.flatten_output and declared.startswith("array[array["):
        return declared[6:-1]
    return declared


def inner_outputs_of(config: BaseModel, item_type: str | None = None) -> dict[str, str | None]:
    """What a container's children read under the container's id: an iteration's current
    ``item`` (of ``item_type``) and ``index``; a loop's variables."""
    if isinstance(config, IterationConfig):
        return {"item": item_type, "index": "number"}
    if isinstance(config, LoopConfig):
        return {variable.label: variable.var_type for variable in config.loop_variables}
    return {}
