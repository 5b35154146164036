"""Agent use cases: drafts (optimistic locking, soft delete), publishing immutable numbered
versions after validation, built-ins (read-only, copyable), and the agent a chat runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg.errors import UniqueViolation

from shared.agents import repository as repo
from shared.agents.api import AgentOut, AgentVersionOut, CopyAgent, CreateAgent, PublishAgent, UpdateAgent
from shared.agents.config import AgentConfig, dump_config, load_config, user_variable_problems
from shared.agents.contract import ChatAgent
from shared.agents.errors import (
    AgentBuiltinReadonly,
    AgentNameTaken,
    AgentNotFound,
    AgentNotPublished,
    AgentVersionConflict,
    AgentVersionNotFound,
)
from shared.agents.paths import AgentRef, agent_ref
from shared.auth.principal import Principal
from shared.db.database import Database
from shared.db.paging import Page, PageRequest
from shared.errors import NotFound, ValidationFailed
from shared.ids import new_id
from shared.models.spec import Capability
from shared.observability import tracer

if TYPE_CHECKING:
    from shared.models.resolver import ModelResolver
    from shared.tools.contract import ToolCatalog
    from shared.workflows.contract import WorkflowResolver

COPY_SUFFIX = " (copy)"
_MAX_NAME = 100


def agent_out(row: dict[str, Any]) -> AgentOut:
    return AgentOut(id=row["id"], slug=row["slug"], builtin=row["builtin"], name=row["name"],
                    description=row["description"], avatar=row["avatar"], config=load_config(row["config"]),
                    published_version=row["published_version"], published_at=row["published_at"],
                    created_at=row["created_at"], updated_at=row["updated_at"], version=row["version"])


def version_out(row: dict[str, Any]) -> AgentVersionOut:
    return AgentVersionOut(**{**row, "config": load_config(row["config"])})


def _field(field: str, message: str, kind: str) -> dict[str, str]:
    return {"field": field, "type": kind, "message": message}


def copy_name(base: str, taken: set[str]) -> str:
    """``<base> (copy)``, then ``(copy 2)``, ``(copy 3)``…, shortened to fit 100 characters."""
    for n in range(1, 1000):
        suffix = COPY_SUFFIX if n == 1 else f" (copy {n})"
        candidate = base[:_MAX_NAME - len(suffix)].rstrip() + suffix
        if candidate.lower() not in taken:
            return candidate
    return base[:_MAX_NAME - 33].rstrip() + f" ({uuid.uuid4().hex})"


# Each use case is a subsegment of the function's trace. Responses stay out of it: some
# carry secrets shown once (a new API key) and X-Ray documents are size-limited.
_traced = tracer.capture_method(capture_response=False)


class AgentService:
    def __init__(self, db: Database, resolver: Callable[[], ModelResolver],
                 workflows: Callable[[], WorkflowResolver] | None = None,
                 tools: Callable[[], ToolCatalog] | None = None) -> None:
        self._db = db
        self._resolver = resolver
        self._workflows = workflows
        self._tools = tools

    # Helpers -------------------------------------------------------------------------------
    @staticmethod
    def _visible(conn: Any, tenant_id: uuid.UUID, ref: AgentRef) -> dict[str, Any]:
        row = repo.get_agent(conn, tenant_id, ref)
        if row is None:
            raise AgentNotFound(details={"agent_id": str(ref)})
        return row

    def _own(self, conn: Any, tenant_id: uuid.UUID, ref: AgentRef, *, lock: bool = False) -> dict[str, Any]:
        """The tenant's own agent, for a write: a built-in is 403, anything else unseen is 404."""
        row = self._visible(conn, tenant_id, ref)
        if row["builtin"]:
            raise AgentBuiltinReadonly(details={"agent_id": str(row["id"]), "slug": row["slug"]})
        if lock:
            locked = repo.get_agent(conn, tenant_id, row["id"], lock=True)
            if locked is None:
                raise AgentNotFound(details={"agent_id": str(ref)})
            return locked
        return row

    # Drafts --------------------------------------------------------------------------------
    @_traced
    def create_agent(self, principal: Principal, body: CreateAgent) -> AgentOut:
        tenant_id = principal.tenant
        try:
            with self._db.transaction(tenant_id) as conn:
                row = repo.insert_agent(conn, agent_id=new_id(), tenant_id=tenant_id, name=body.name,
                                        description=body.description, avatar=body.avatar,
                                        config=dump_config(body.config))
        except UniqueViolation as exc:
            raise AgentNameTaken(details={"name": body.name}) from exc
        return agent_out(row)

    @_traced
    def list_agents(self, principal: Principal, builtin: bool | None, page: PageRequest, *,
                    published: bool | None = None, agent_id: uuid.UUID | None = None) -> Page[AgentOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            rows, total = repo.list_agents(conn, tenant_id, builtin, page, published=published, agent_id=agent_id)
        return Page.of([agent_out(r) for r in rows], page, total)

    @_traced
    def get_agent(self, principal: Principal, ref: AgentRef) -> AgentOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            return agent_out(self._visible(conn, tenant_id, ref))

    @_traced
    def update_agent(self, principal: Principal, ref: AgentRef, body: UpdateAgent) -> AgentOut:
        tenant_id = principal.tenant
        values: dict[str, Any] = {}
        if body.name is not None:
            values["name"] = body.name
        if body.description is not None:
            values["description"] = body.description
        if "avatar" in body.model_fields_set:
            values["avatar"] = body.avatar
        if body.config is not None:
            values["config"] = dump_config(body.config)
        try:
            with self._db.transaction(tenant_id) as conn:
                current = self._own(conn, tenant_id, ref)
                if not values:
                    if current["version"] != body.version:
                        raise AgentVersionConflict(details={"version": current["version"]})
                    return agent_out(current)
                row = repo.update_agent(conn, tenant_id, current["id"], values, body.version)
                if row is None:
                    latest = repo.get_agent(conn, tenant_id, current["id"])
                    if latest is None:
                        raise AgentNotFound(details={"agent_id": str(ref)})
                    raise AgentVersionConflict(details={"version": latest["version"]})
        except UniqueViolation as exc:
            raise AgentNameTaken(details={"name": body.name}) from exc
        return agent_out(row)

    @_traced
    def delete_agent(self, principal: Principal, ref: AgentRef) -> None:
        """Soft delete: the name is free again; versions go with the agent at the retention purge."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            current = self._own(conn, tenant_id, ref)
            if not repo.soft_delete_agent(conn, tenant_id, current["id"]):
                raise AgentNotFound(details={"agent_id": str(ref)})

    @_traced
    def copy_agent(self, principal: Principal, ref: AgentRef, body: CopyAgent) -> AgentOut:
        """A new draft of the tenant from any agent it sees (built-ins included)."""
        tenant_id = principal.tenant
        for _ in range(5):  # a concurrent copy may take the same generated name
            try:
                with self._db.transaction(tenant_id) as conn:
                    source = self._visible(conn, tenant_id, ref)
                    name = body.name or copy_name(source["name"], repo.names_like(conn, tenant_id, source["name"]))
                    row = repo.insert_agent(conn, agent_id=new_id(), tenant_id=tenant_id, name=name,
                                            description=source["description"], avatar=source["avatar"],
                                            config=dump_config(load_config(source["config"])))
                return agent_out(row)
            except UniqueViolation as exc:
                if body.name:
                    raise AgentNameTaken(details={"name": body.name}) from exc
        raise AgentNameTaken(details={"name": f"{ref} (copy)"})

    # Publishing ----------------------------------------------------------------------------
    def _model_problems(self, tenant_id: uuid.UUID, config: AgentConfig) -> list[dict[str, str]]:
        """Model checks, each naming its field. Outside any transaction: the resolver opens its own."""
        from shared.models.errors import ModelNotConfigured

        resolver = self._resolver()
        problems: list[dict[str, str]] = []

        def check(name: str | None, capability: Capability, field: str) -> Any:
            if not name:
                problems.append(_field(field, f"No {capability.value} model is configured: name one here or set "
                                              "the tenant's default (PUT /api/v1/models/defaults)",
                                       "model_not_configured"))
                return None
            try:
                return resolver.get(tenant_id, name, capability)
            except NotFound as exc:
                problems.append(_field(field, exc.message, exc.code))
            except ModelNotConfigured as exc:
                problems.append(_field(field, exc.message, exc.code))
            return None

        model = check(config.model.name or resolver.default_name(tenant_id, Capability.CHAT), Capability.CHAT,
                      "config.model.name")
        if model is not None and config.model.max_tokens is not None \
                and config.model.max_tokens > model.spec.max_output_tokens:
            problems.append(_field("config.model.max_tokens",
                                   f"{model.name} answers at most {model.spec.max_output_tokens} tokens",
                                   "less_than_equal"))
        if config.fallback_model:
            check(config.fallback_model, Capability.CHAT, "config.fallback_model")
        if config.knowledge.retrieval.rerank_model:
            check(config.knowledge.retrieval.rerank_model, Capability.RERANK,
                  "config.knowledge.retrieval.rerank_model")
        if config.mode == "smart-reasoning" and model is not None and config.reasoning == "function_calling" \
                and not model.spec.has(Capability.FUNCTION_CALLING):
            problems.append(_field("config.reasoning", f"{model.name} does not declare function_calling: choose "
                                                       "\"react\" (or \"auto\"), or a model that calls tools",
                                   "model_capability_missing"))
        return problems

    def _tool_problems(self, tenant_id: uuid.UUID, config: AgentConfig) -> list[dict[str, str]]:
        """A smart-reasoning agent's tools: each exists in the tenant (a provider and the
        operations named, a published workflow), and a forced ``tool_choice`` names one of them."""
        from shared.agents.tooling import tool_problems

        if self._tools is None:
            return [_field("config.tools", "Tools are not available here", "tools_unavailable")] \
                if config.tools else []
        return tool_problems(self._tools(), tenant_id, config)

    def _chatflow_problems(self, tenant_id: uuid.UUID, config: AgentConfig) -> list[dict[str, str]]:
        """A chatflow agent's workflow: of the tenant, published, and a chatflow."""
        from shared.errors import Conflict
        from shared.workflows.contract import CHATFLOW

        field = "config.chatflow.workflow_id"
        workflow_id = config.chatflow.workflow_id
        if workflow_id is None:
            return [_field(field, "A chatflow agent names the chatflow it runs: set config.chatflow.workflow_id",
                           "missing")]
        if self._workflows is None:
            return [_field(field, "Chatflows are not available here", "chatflow_unavailable")]
        try:
            runnable = self._workflows().resolve_for_run(tenant_id, workflow_id, None)
        except NotFound:
            return [_field(field, f"Workflow {workflow_id} does not exist", "workflow_not_found")]
        except Conflict as exc:  # never published
            return [_field(field, f"Workflow {workflow_id} has no published version: publish it first", exc.code)]
        if runnable.document.mode != CHATFLOW:
            return [_field(field, f"Workflow {workflow_id} is a workflow, not a chatflow (its mode is "
                                  f"{runnable.document.mode!r}): an agent chats through a chatflow",
                           "workflow_not_chatflow")]
        return []

    @_traced
    def publish_agent(self, principal: Principal, ref: AgentRef, body: PublishAgent) -> AgentVersionOut:
        """Validate the draft (models usable for chat, knowledge bases live in the tenant) and
        snapshot it as the next version; chats then use it."""
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            draft = self._own(conn, tenant_id, ref)
        if body.version is not None and body.version != draft["version"]:
            raise AgentVersionConflict(details={"version": draft["version"]})
        config = load_config(draft["config"])
        # A chatflow agent's models are its chatflow's, checked when the chatflow was published.
        problems = (self._chatflow_problems(tenant_id, config) if config.mode == "chatflow"
                    else self._model_problems(tenant_id, config))
        if config.mode == "smart-reasoning":
            problems += self._tool_problems(tenant_id, config)
        problems += user_variable_problems(config)
        with self._db.transaction(tenant_id) as conn:
            # Locked: publishes of one agent take numbers one at a time.
            agent = self._own(conn, tenant_id, draft["id"], lock=True)
            if agent["version"] != draft["version"]:
                raise AgentVersionConflict("The draft changed while it was being published; publish again",
                                           details={"version": agent["version"]})
            kb_ids = config.knowledge.knowledge_base_ids
            found = repo.active_knowledge_bases(conn, tenant_id, kb_ids) if kb_ids else set()
            problems += [_field(f"config.knowledge.knowledge_base_ids[{i}]",
                                f"Knowledge base {kb_id} does not exist", "knowledge_base_not_found")
                         for i, kb_id in enumerate(kb_ids) if kb_id not in found]
            if problems:
                raise ValidationFailed("The agent cannot be published: " + problems[0]["message"],
                                       code="agent_config_invalid", details={"fields": problems})
            number = repo.next_version_number(conn, tenant_id, agent["id"])
            row = repo.insert_version(conn, version_id=new_id(), tenant_id=tenant_id, agent=agent, number=number,
                                      config=dump_config(config), note=body.note, published_by=principal.user_id)
            repo.mark_published(conn, tenant_id, agent["id"], number)
        return version_out(row)

    @_traced
    def list_versions(self, principal: Principal, ref: AgentRef,
                      page: PageRequest) -> Page[AgentVersionOut]:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            agent = self._visible(conn, tenant_id, ref)
            rows, total = repo.list_versions(conn, tenant_id, agent["id"], page) if not agent["builtin"] else ([], 0)
        return Page.of([version_out(r) for r in rows], page, total)

    @_traced
    def published_versions(self, principal: Principal, agent_ids: list[uuid.UUID]) -> dict[uuid.UUID, AgentVersionOut]:
        """The version each agent publishes now, by agent (one query for a page of agents)."""
        if not agent_ids:
            return {}
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            found = repo.published_versions(conn, tenant_id, agent_ids)
        return {row["agent_id"]: version_out(row) for row in found}

    @_traced
    def get_version(self, principal: Principal, ref: AgentRef, number: int) -> AgentVersionOut:
        tenant_id = principal.tenant
        with self._db.transaction(tenant_id) as conn:
            agent = self._visible(conn, tenant_id, ref)
            row = None if agent["builtin"] else repo.get_version(conn, tenant_id, agent["id"], number)
        if row is None:
            raise AgentVersionNotFound(details={"agent_id": str(agent["id"]), "number": number})
        return version_out(row)

    # For other domains (shared.agents.contract.AgentResolver) ------------------------------------
    @_traced
    def chat_agents(self, tenant_id: uuid.UUID, agent_id: uuid.UUID | None = None,
                    limit: int = 1000) -> list[AgentOut]:
        """The agents the tenant can chat with (built-ins first, then its published agents,
        oldest first; at most ``limit``), or only ``agent_id`` among them."""
        with self._db.transaction(tenant_id) as conn:
            return [agent_out(row) for row in repo.chat_agents(conn, tenant_id, agent_id, limit)]

    @_traced
    def agent_id(self, tenant_id: uuid.UUID, ref: AgentRef) -> uuid.UUID:
        with self._db.transaction(tenant_id) as conn:
            agent_id: uuid.UUID = self._visible(conn, tenant_id, ref)["id"]
        return agent_id

    @_traced
    def resolve_for_chat(self, tenant_id: uuid.UUID, ref: AgentRef, draft: bool = False) -> ChatAgent:
        """The configuration a chat turn runs: the latest published version, or the draft when
        a draft (debug) chat is asked for explicitly. A built-in runs its fixed configuration.
        An agent never published answers 409 ``agent_not_published`` unless ``draft``."""
        if isinstance(ref, str):
            ref = agent_ref(ref)
        with self._db.transaction(tenant_id) as conn:
            row = self._visible(conn, tenant_id, ref)
            agent = agent_out(row)
            if draft or agent.builtin:
                return ChatAgent(agent, agent.config, None)
            if agent.published_version is None:
                raise AgentNotPublished(details={"agent_id": str(agent.id)})
            version = repo.get_version(conn, tenant_id, agent.id, agent.published_version)
        if version is None:  # published_version always names a stored row
            raise AgentNotPublished(details={"agent_id": str(agent.id)})
        return ChatAgent(agent, load_config(version["config"]), agent.published_version)
