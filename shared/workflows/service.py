"""Workflow use cases: drafts (saved as sent, shape-checked; optimistic locking, soft delete),
publishing immutable numbered versions after full validation, Dify import and export, and the
document a run executes."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from psycopg.errors import UniqueViolation
from pydantic import ValidationError

from shared.auth.principal import Principal
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id, parse_id
from shared.models.spec import Capability
from shared.observability import tracer
from shared.workflows import repository as repo
from shared.workflows.api import (
    CreateWorkflow,
    ImportWorkflow,
    ModelSubstitution,
    PublishWorkflow,
    UpdateWorkflow,
    WorkflowImported,
    WorkflowOut,
    WorkflowProblem,
    WorkflowSummary,
    WorkflowVersionOut,
    WorkflowVersionSummary,
    check_document_size,
)
from shared.workflows.configs import (
    KnowledgeRetrievalConfig,
    LlmConfig,
    ParameterExtractorConfig,
    QuestionClassifierConfig,
    parse_config,
)
from shared.workflows.contract import DRAFT, RunnableWorkflow
from shared.workflows.definition import WorkflowDocument
from shared.workflows.errors import (
    WorkflowNameTaken,
    WorkflowNotFound,
    WorkflowNotPublished,
    WorkflowVersionConflict,
    WorkflowVersionNotFound,
)
from shared.workflows.sub_workflows import sub_workflow_problems

if TYPE_CHECKING:
    from shared.agents.contract import AgentResolver
    from shared.models.resolver import ModelResolver
    from shared.tools.contract import ToolCatalog

_MAX_NAME = 100
IMPORTED_NAME = "Imported workflow"


class ExportedWorkflow(NamedTuple):
    filename: str
    content: str


def starter_document() -> WorkflowDocument:
    """A new workflow's draft, as Coze Studio starts one: a start node linked to an end node."""
    return WorkflowDocument.model_validate({
        "nodes": [
            {"id": "start", "type": "start", "title": "Start", "config": {"variables": []},
             "position": {"x": 80.0, "y": 280.0}},
            {"id": "end", "type": "end", "title": "End", "config": {"outputs": []},
             "position": {"x": 480.0, "y": 280.0}},
        ],
        "edges": [{"source": "start", "target": "end"}],
    })


def load_document(stored: Any) -> WorkflowDocument:
    return WorkflowDocument.model_validate(stored)


def dump_document(document: WorkflowDocument) -> dict[str, Any]:
    return document.model_dump(mode="json")


def problem_out(problem: Any) -> WorkflowProblem:
    """A problem of :func:`shared.workflows.validation.validate_document` as the API shows it."""
    return WorkflowProblem(node_id=problem.node_id, field=problem.field, code=problem.code, message=problem.message)


def document_problems(document: WorkflowDocument) -> list[WorkflowProblem]:
    """The graph's problems (structure, references, types, configurations): no I/O."""
    from shared.workflows.validation import validate_document

    return [problem_out(p) for p in validate_document(document)]


def invalid(problems: list[WorkflowProblem], action: str) -> ValidationFailed:
    """The one 422 ``workflow_invalid`` listing every problem (``action``: publish, run)."""
    first = problems[0]
    where = ", ".join(part for part in (f"node {first.node_id}" if first.node_id else "", first.field) if part)
    more = f" (and {len(problems) - 1} more problems, listed in details.problems)" if len(problems) > 1 else ""
    return ValidationFailed(f"The workflow cannot be {action}: {where + ': ' if where else ''}{first.message}{more}",
                            code="workflow_invalid", details={"problems": [p.model_dump() for p in problems]})


def summary_out(row: dict[str, Any]) -> WorkflowSummary:
    return WorkflowSummary.model_validate({k: v for k, v in row.items() if k in WorkflowSummary.model_fields})


def workflow_out(row: dict[str, Any], document: WorkflowDocument | None = None) -> WorkflowOut:
    document = document if document is not None else load_document(row["draft"])
    fields = {k: v for k, v in row.items() if k in WorkflowSummary.model_fields}
    return WorkflowOut(**fields, document=document, problems=document_problems(document))


def version_summary_out(row: dict[str, Any]) -> WorkflowVersionSummary:
    return WorkflowVersionSummary.model_validate({k: v for k, v in row.items()
                                                  if k in WorkflowVersionSummary.model_fields})


def version_out(row: dict[str, Any]) -> WorkflowVersionOut:
    fields = {k: v for k, v in row.items() if k in WorkflowVersionSummary.model_fields}
    return WorkflowVersionOut(**fields, document=load_document(row["document"]))


def numbered_name(base: str, taken: set[str]) -> str:
    """``base`` if free (ignoring case), else ``base (2)``, ``(3)``…, shortened to 100 characters."""
    if base.lower() not in taken:
        return base
    for n in range(2, 1000):
        suffix = f" ({n})"
        candidate = base[:_MAX_NAME - len(suffix)].rstrip() + suffix
        if candidate.lower() not in taken:
            return candidate
    return base[:_MAX_NAME - 35].rstrip() + f" ({uuid.uuid4().hex})"


def _field(node_id: str, field: str, code: str, message: str) -> WorkflowProblem:
    return WorkflowProblem(node_id=node_id, field=field, code=code, message=message)


# Node types that call a chat model (their config's ``model`` names it).
MODEL_NODE_TYPES = ("llm", "question_classifier", "parameter_extractor")


def end_outputs(document: WorkflowDocument) -> list[str]:
    """The output names a document's top-level end nodes answer, in document order."""
    names: list[str] = []
    for _, config in _configs(document, "end"):
        names += [output.variable for output in config.outputs if output.variable not in names]
    return names


def _configs(document: WorkflowDocument, *node_types: str) -> Iterable[tuple[str, Any]]:
    """The nodes of these types whose configuration parses (the others are validation's
    problems), in document order."""
    for node in document.nodes:
        if node.type in node_types:
            try:
                yield node.id, parse_config(node.type, node.config)
            except ValidationError:
                continue


# Each use case is a subsegment of the function's trace; responses stay out of it (documents
# are large and X-Ray documents are size-limited).
_traced = tracer.capture_method(capture_response=False)


class WorkflowService:
    def __init__(self, db: Database, resolver: Callable[[], ModelResolver], *,
                 tools: Callable[[], ToolCatalog] | None = None,
                 agents: Callable[[], AgentResolver] | None = None) -> None:
        self._db = db
        self._resolver = resolver
        # The tenant's tools and agents, which tool and agent nodes name (None: such nodes are
        # not checked against the tenant, as where no tools domain is wired).
        self._tools = tools
        self._agents = agents

    # Helpers -------------------------------------------------------------------------------
    @staticmethod
    def _live(conn: Any, tenant_id: uuid.UUID, workflow_id: uuid.UUID, *, lock: bool = False) -> dict[str, Any]:
        row = repo.get_workflow(conn, tenant_id, workflow_id, lock=lock)
        if row is None:
            raise WorkflowNotFound(details={"workflow_id": str(workflow_id)})
        return row

    def _insert(self, principal: Principal, *, name: str, description: str, document: WorkflowDocument,
                name_given: bool) -> dict[str, Any]:
        """A new workflow. A name the caller chose must be free (409); a name taken from a file
        is numbered until it is."""
        tenant_id = principal.tenant
        for _ in range(5):  # a concurrent create may take the same numbered name
            try:
                with self._db.transaction(tenant_id) as conn:
                    # Names starting like this one: a long name's numbered form is shortened first.
                    chosen = name if name_given else numbered_name(
                        name, repo.names_like(conn, tenant_id, name[:_MAX_NAME - 40]))
                    return repo.insert_workflow(conn, workflow_id=new_id(), tenant_id=tenant_id, name=chosen,
                                                description=description, draft=dump_document(document),
                                                user_id=principal.user_id)
            except UniqueViolation as exc:
                if name_given:
                    raise WorkflowNameTaken(details={"name": name}) from exc
        raise WorkflowNameTaken(details={"name": name})

    # Drafts --------------------------------------------------------------------------------
    @_traced
    def create_workflow(self, principal: Principal, body: CreateWorkflow) -> WorkflowOut:
        document = body.document if body.document is not None else starter_document()
        row = self._insert(principal, name=body.name, description=body.description, document=document,
                           name_given=True)
        return workflow_out(row, document)

    @_traced
    def list_workflows(self, principal: Principal, name: str | None, page: PageRequest) -> Page[WorkflowSummary]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            rows, total = repo.list_workflows(conn, tenant_id, name, page)
        return Page.of([summary_out(r) for r in rows], page, total)

    @_traced
    def get_workflow(self, principal: Principal, workflow_id: uuid.UUID) -> WorkflowOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = self._live(conn, tenant_id, workflow_id)
        return workflow_out(row)

    @_traced
    def update_workflow(self, principal: Principal, workflow_id: uuid.UUID, body: UpdateWorkflow) -> WorkflowOut:
        tenant_id = principal.tenant
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.description is not None:
            values["description"] = body.description
        if body.document is not None:
            values["draft"] = dump_document(body.document)
        try:
            with self._db.transaction(tenant_id) as conn:
                current = self._live(conn, tenant_id, workflow_id)
                if not values:
                    if current["version"] != body.version:
                        raise WorkflowVersionConflict(details={"version": current["version"]})
                    row = current
                else:
                    values["updated_by"] = principal.user_id
                    updated = repo.update_workflow(conn, tenant_id, workflow_id, values, body.version)
                    if updated is None:
                        latest = self._live(conn, tenant_id, workflow_id)
                        raise WorkflowVersionConflict(details={"version": latest["version"]})
                    row = updated
        except UniqueViolation as exc:
            raise WorkflowNameTaken(details={"name": body.name}) from exc
        return workflow_out(row)

    @_traced
    def delete_workflow(self, principal: Principal, workflow_id: uuid.UUID) -> None:
        """Soft delete: the name is free again; versions go with the workflow at the retention purge."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            if not repo.soft_delete_workflow(conn, tenant_id, workflow_id, principal.user_id):
                raise WorkflowNotFound(details={"workflow_id": str(workflow_id)})

    # Validation beyond the document: what it names must exist in the tenant ------------------
    def _model_problems(self, tenant_id: uuid.UUID, document: WorkflowDocument) -> list[WorkflowProblem]:
        """Each model-calling node's model (its own, else the tenant's default chat model) exists
        and can chat, and its max_tokens fits. Outside any transaction: the resolver opens its own."""
        from shared.models.errors import ModelNotConfigured

        resolver = self._resolver()
        problems: list[WorkflowProblem] = []
        for node_id, config in _configs(document, *MODEL_NODE_TYPES):
            assert isinstance(config, LlmConfig | QuestionClassifierConfig | ParameterExtractorConfig)
            name = config.model.name or resolver.default_name(tenant_id, Capability.CHAT)
            if not name:
                problems.append(_field(node_id, "config.model.name", "model_not_configured",
                                       "No chat model is configured: name one here or set the tenant's default "
                                       "(PUT /api/v1/models/defaults)"))
                continue
            try:
                model = resolver.get(tenant_id, name, Capability.CHAT)
            except (NotFound, ModelNotConfigured) as exc:
                problems.append(_field(node_id, "config.model.name", exc.code, exc.message))
                continue
            if config.model.max_tokens is not None and config.model.max_tokens > model.spec.max_output_tokens:
                problems.append(_field(node_id, "config.model.max_tokens", "less_than_equal",
                                       f"{model.name} answers at most {model.spec.max_output_tokens} tokens"))
        return problems

    @staticmethod
    def _knowledge_problems(conn: Any, tenant_id: uuid.UUID, document: WorkflowDocument) -> list[WorkflowProblem]:
        """Each knowledge retrieval node's knowledge bases are live and active in the tenant."""
        nodes = list(_configs(document, "knowledge_retrieval"))
        wanted = {parsed for _, config in nodes for kb in config.knowledge_base_ids
                  if (parsed := parse_id(kb)) is not None}
        found = repo.active_knowledge_bases(conn, tenant_id, sorted(wanted)) if wanted else set()
        problems = []
        for node_id, config in nodes:
            assert isinstance(config, KnowledgeRetrievalConfig)
            for i, kb in enumerate(config.knowledge_base_ids):
                # An id that is no UUID is the document validation's problem.
                if (parsed := parse_id(kb)) is not None and parsed not in found:
                    problems.append(_field(node_id, f"config.knowledge_base_ids[{i}]", "knowledge_base_not_found",
                                           f"Knowledge base {kb} does not exist in this tenant, or is not active"))
        return problems

    def _target_problems(self, tenant_id: uuid.UUID, document: WorkflowDocument) -> list[WorkflowProblem]:
        """Each tool node's tool exists in the tenant and takes its arguments; each agent node's
        agent exists and is published. Outside any transaction: the ports open their own."""
        from shared.workflows.node_targets import agent_node_problems, tool_node_problems

        types = {node.type for node in document.nodes}
        problems: list[WorkflowProblem] = []
        if "tool" in types and self._tools is not None:
            problems += tool_node_problems(self._tools(), tenant_id, document)
        if "agent" in types and self._agents is not None:
            problems += agent_node_problems(self._agents(), tenant_id, document)
        return problems

    # Publishing ----------------------------------------------------------------------------
    @_traced
    def publish_workflow(self, principal: Principal, workflow_id: uuid.UUID,
                         body: PublishWorkflow) -> WorkflowVersionOut:
        """Validate the draft (the graph, then the models and knowledge bases it names) and
        snapshot it as the next version; every problem is reported at once."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            draft = self._live(conn, tenant_id, workflow_id)
        if body.version is not None and body.version != draft["version"]:
            raise WorkflowVersionConflict(details={"version": draft["version"]})
        document = load_document(draft["draft"])
        problems = (document_problems(document) + self._model_problems(tenant_id, document)
                    + self._target_problems(tenant_id, document))
        with self._db.transaction(tenant_id) as conn:
            # Locked: publishes of one workflow take numbers one at a time.
            workflow = self._live(conn, tenant_id, workflow_id, lock=True)
            if workflow["version"] != draft["version"]:
                raise WorkflowVersionConflict("The draft changed while it was being published; publish again",
                                              details={"version": workflow["version"]})
            problems += self._knowledge_problems(conn, tenant_id, document)
            problems += sub_workflow_problems(conn, tenant_id, workflow_id, document)
            if problems:
                raise invalid(problems, "published")
            number = repo.next_version_number(conn, tenant_id, workflow_id)
            row = repo.insert_version(conn, version_id=new_id(), tenant_id=tenant_id, workflow=workflow,
                                      number=number, document=dump_document(document), note=body.note,
                                      user_id=principal.user_id)
            repo.mark_published(conn, tenant_id, workflow_id, number)
        return version_out(row)

    @_traced
    def list_versions(self, principal: Principal, workflow_id: uuid.UUID,
                      page: PageRequest) -> Page[WorkflowVersionSummary]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._live(conn, tenant_id, workflow_id)
            rows, total = repo.list_versions(conn, tenant_id, workflow_id, page)
        return Page.of([version_summary_out(r) for r in rows], page, total)

    @_traced
    def get_version(self, principal: Principal, workflow_id: uuid.UUID, number: int) -> WorkflowVersionOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            self._live(conn, tenant_id, workflow_id)
            row = repo.get_version(conn, tenant_id, workflow_id, number)
        if row is None:
            raise WorkflowVersionNotFound(details={"workflow_id": str(workflow_id), "number": number})
        return version_out(row)

    # Import and export ---------------------------------------------------------------------
    @_traced
    def import_workflow(self, principal: Principal, body: ImportWorkflow) -> WorkflowImported:
        """A new draft from a Dify app DSL; model references that name none of the tenant's usable
        chat models become its default chat model, each listed in the answer."""
        from shared.models.credentials import configured
        from shared.workflows.dify import import_dify

        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            # Model names ignore case, as the resolver does.
            model_names = {name.lower() for name in repo.chat_model_names(conn, tenant_id)}
        resolver = self._resolver()
        default_model = resolver.default_name(tenant_id, Capability.CHAT)

        def usable(name: str) -> bool:
            # A platform model whose provider key the deployment lacks would only fail at run
            # time: the file's reference is substituted (and listed) instead.
            return name.lower() in model_names and configured(resolver.get(tenant_id, name, Capability.CHAT))

        def workflow_named(name: str) -> tuple[str, list[str]] | None:
            # A Dify workflow tool: the tenant's workflow of that id or name, with the outputs of
            # its published version (its draft's when it has none yet).
            with self._db.transaction(tenant_id) as conn:
                found = repo.find_workflow(conn, tenant_id, name)
                if found is None:
                    return None
                snapshot = (repo.get_version(conn, tenant_id, found["id"], found["published_version"])
                            if found["published_version"] else None)
            called = load_document(snapshot["document"] if snapshot else found["draft"])
            return str(found["id"]), end_outputs(called)

        tools = self._tools

        def tenant_tools() -> list[Any]:
            # A Dify tool node names a tool provider of the tenant (or a built-in) by name.
            return list(tools().list(tenant_id)) if tools is not None else []

        result = import_dify(body.content, model_names=usable, default_model=default_model, workflows=workflow_named,
                             tools=tenant_tools)
        try:
            check_document_size(result.document)
        except ValueError as exc:
            raise ValidationFailed(f"The imported workflow is too large: {exc}", details={"fields": [
                {"field": "body.content", "type": "document_too_large", "message": str(exc)}]}) from exc
        name = body.name or (result.name or "").strip()[:_MAX_NAME].strip() or IMPORTED_NAME
        row = self._insert(principal, name=name, description=(result.description or "")[:2000],
                           document=result.document, name_given=body.name is not None)
        warnings = list(result.warnings)
        if body.name is None and row["name"] != name:
            warnings.append(f"A workflow named {name!r} exists: this one is named {row['name']!r}")
        return WorkflowImported(workflow=workflow_out(row, result.document),
                                substitutions=[ModelSubstitution.model_validate(s.as_dict())
                                               for s in result.substitutions],
                                warnings=warnings)

    @_traced
    def export_workflow(self, principal: Principal, workflow_id: uuid.UUID, export_format: Literal["dify"],
                        version: int | None) -> ExportedWorkflow:
        """The draft, or a published version, as a Dify app DSL file (YAML)."""
        from shared.workflows.dify import export_dify

        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            row = self._live(conn, tenant_id, workflow_id)
            if version is not None:
                snapshot = repo.get_version(conn, tenant_id, workflow_id, version)
                if snapshot is None:
                    raise WorkflowVersionNotFound(details={"workflow_id": str(workflow_id), "number": version})
                row = {**snapshot, "draft": snapshot["document"]}
        content = export_dify(load_document(row["draft"]), name=row["name"], description=row["description"])
        return ExportedWorkflow(f"{row['name']}.yml", content)

    # For other domains (shared.workflows.contract.WorkflowResolver) ---------------------------
    @_traced
    def workflow_id(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID) -> uuid.UUID:
        with self._db.transaction(tenant_id) as conn:
            found: uuid.UUID = self._live(conn, tenant_id, workflow_id)["id"]
        return found

    @_traced
    def resolve_for_run(self, tenant_id: uuid.UUID, workflow_id: uuid.UUID,
                        version: int | Literal["draft"] | None = None) -> RunnableWorkflow:
        with self._db.transaction(tenant_id) as conn:
            workflow = self._live(conn, tenant_id, workflow_id)
            if version == DRAFT:
                snapshot = None
            else:
                number: int | None = version if isinstance(version, int) else workflow["published_version"]
                if number is None:
                    raise WorkflowNotPublished(details={"workflow_id": str(workflow_id)})
                snapshot = repo.get_version(conn, tenant_id, workflow_id, number)
                if snapshot is None:
                    raise WorkflowVersionNotFound(details={"workflow_id": str(workflow_id), "number": number})
        if snapshot is not None:
            return RunnableWorkflow(workflow_id, workflow["name"], snapshot["number"],
                                    load_document(snapshot["document"]))
        document = load_document(workflow["draft"])
        problems = (document_problems(document) + self._model_problems(tenant_id, document)
                    + self._target_problems(tenant_id, document))
        with self._db.transaction(tenant_id) as conn:
            problems += self._knowledge_problems(conn, tenant_id, document)
            problems += sub_workflow_problems(conn, tenant_id, workflow_id, document)
        if problems:
            raise invalid(problems, "run")
        return RunnableWorkflow(workflow_id, workflow["name"], None, document)
