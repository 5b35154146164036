"""The tenancy domain's :class:`~shared.tenancy.contract.TenantDirectory`, over its repository."""

from __future__ import annotations

import uuid

from shared.db.database import Database
from shared.tenancy import repository as repo


class DatabaseTenantDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

    def tenant_exists(self, tenant_id: uuid.UUID) -> bool:
        with self._db.transaction(tenant_id) as conn:
            return repo.get_tenant(conn, tenant_id) is not None


def tenant_directory() -> DatabaseTenantDirectory:
    """The directory on the container's database."""
    from shared.db.database import get_database

    return DatabaseTenantDirectory(get_database())
