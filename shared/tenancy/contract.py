"""What the tenancy domain offers the others: whether a tenant exists (the models domain sets
quotas against tenants). Callers depend on :class:`TenantDirectory`, never on the repository."""

from __future__ import annotations

import uuid
from typing import Protocol


class TenantDirectory(Protocol):
    def tenant_exists(self, tenant_id: uuid.UUID) -> bool:
        """A live tenant (one deleted is not)."""
        ...
