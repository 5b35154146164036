"""Agent variables (Coze's "memory"): values an agent declares (``config.user_variables``) and
keeps per end user. The declarations read are those of the configuration chats run: the
published version's, else (never published) the draft's. Read by chat turns (the system
prompt's ``{{name}}``, a chatflow's ``sys.user_variables``) and set by clients through the
variables API. Precedence where a turn reads one: the request's ``inputs`` > the stored value >
the default (docs/variables.md)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from shared.agents import repository as repo
from shared.agents.api import AgentVariablesOut, AgentVariableValue
from shared.agents.config import AgentConfig, load_config
from shared.agents.errors import AgentNotFound
from shared.agents.paths import AgentRef
from shared.auth.principal import Principal
from shared.db.database import Database
from shared.errors import ValidationFailed
from shared.observability import tracer

# The end user of a token's own calls (as conversations name it).
MEMBER_PREFIX = "member:"

_traced = tracer.capture_method(capture_response=False)


def end_user(principal: Principal, user: str | None) -> str:
    return user if user else f"{MEMBER_PREFIX}{principal.user}"


class AgentVariables:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _agent(self, conn: Any, principal: Principal, ref: AgentRef) -> tuple[uuid.UUID, AgentConfig]:
        """The agent (a key bound to another agent: not found) and the configuration whose
        declarations apply."""
        tenant_id = principal.tenant
        row = repo.get_agent(conn, tenant_id, ref)
        if row is None or (principal.resource_type is not None and principal.resource_id != row["id"]):
            raise AgentNotFound(details={"agent_id": str(ref)})
        config = row["config"]
        if row["published_version"] is not None:
            version = repo.get_version(conn, tenant_id, row["id"], row["published_version"])
            config = version["config"] if version is not None else config
        return row["id"], load_config(config)

    @staticmethod
    def _out(agent_id: uuid.UUID, user: str, config: AgentConfig, stored: Sequence[Mapping[str, Any]],
             names: Sequence[str] | None = None) -> AgentVariablesOut:
        kept = {row["name"]: row for row in stored}
        wanted = set(names) if names else None
        items = []
        for variable in config.user_variables:
            if wanted is not None and variable.name not in wanted:
                continue
            row = kept.get(variable.name)
            items.append(AgentVariableValue(
                name=variable.name, description=variable.description, default=variable.default,
                value=row["value"] if row else variable.default, source="stored" if row else "default",
                created_at=row["created_at"] if row else None, updated_at=row["updated_at"] if row else None))
        return AgentVariablesOut(agent_id=agent_id, user=user, variables=items)

    @_traced
    def get_values(self, principal: Principal, ref: AgentRef, user: str | None,
                   names: Sequence[str] | None = None) -> AgentVariablesOut:
        """The end user's value of each declared variable (``names``: only those; a name the
        agent does not declare is left out, as Coze does)."""
        who = end_user(principal, user)
        with self._db.transaction(principal.tenant) as conn:
            agent_id, config = self._agent(conn, principal, ref)
            stored = repo.variable_values(conn, principal.tenant, agent_id, who)
        return self._out(agent_id, who, config, stored, names)

    @_traced
    def set_values(self, principal: Principal, ref: AgentRef, user: str | None,
                   values: Mapping[str, str | None], field: str = "values") -> AgentVariablesOut:
        """Set (or, with None, clear) the end user's values, all or none: a name the agent does
        not declare is a 422 naming ``<field>.<name>`` and changes nothing."""
        who = end_user(principal, user)
        with self._db.transaction(principal.tenant) as conn:
            agent_id, config = self._agent(conn, principal, ref)
            declared = {v.name for v in config.user_variables}
            unknown = [name for name in values if name not in declared]
            if unknown:
                problems = [{"field": f"{field}.{name}", "type": "unknown_variable",
                             "message": f"the agent declares no variable {name!r} (it declares "
                                        f"{', '.join(sorted(declared)) or 'none'})"} for name in unknown]
                raise ValidationFailed(problems[0]["message"], code="agent_variable_unknown",
                                       details={"fields": problems})
            for name, value in values.items():
                if value is None:
                    repo.clear_variable_value(conn, principal.tenant, agent_id, who, name)
                else:
                    repo.set_variable_value(conn, principal.tenant, agent_id, who, name, value)
            stored = repo.variable_values(conn, principal.tenant, agent_id, who)
        return self._out(agent_id, who, config, stored)

    # For chat turns (shared.agents.contract.AgentVariableStore) --------------------------------
    @_traced
    def stored_values(self, tenant_id: uuid.UUID, agent_id: uuid.UUID, user: str) -> dict[str, str]:
        with self._db.transaction(tenant_id) as conn:
            return {row["name"]: row["value"] for row in repo.variable_values(conn, tenant_id, agent_id, user)}
