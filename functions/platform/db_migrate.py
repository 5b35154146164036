"""Deploy-time: apply SQL migrations and install the application role's password and the
platform admin token.

The CDK Provider framework calls this one function twice over (docs/adr/0048):

- as ``onEvent`` (the CloudFormation request): it decides, and does no database work. A
  rollback ``Update`` (its ``MigrationsHash`` is not the bundled migrations' hash: CloudFormation
  is putting back the previous template while this code is still the new one) is a no-op;
  everything else is left to the waiter.
- as ``isComplete`` (the same request plus onEvent's answer, marked ``StratusMigrate``), every
  ``QUERY_INTERVAL`` until done: each call applies the pending migrations that fit in its
  own invocation and answers ``IsComplete: false`` while some remain, so a long series of
  migrations never depends on one invocation. Migrations are recorded, so a repeated call
  applies nothing.

The secret ARNs are properties of the custom resource: a replaced secret changes them, so
CloudFormation sends an Update and the password (or token) is installed again.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from shared.aws.secrets import get_secret_json
from shared.config import get_settings
from shared.handler import powertools_handler

logger = logging.getLogger(__name__)

PHYSICAL_ID = "stratus-database-schema"
# The marker onEvent adds to its answer; the framework passes it on to every isComplete call.
PHASE_KEY = "StratusMigrate"
RUN, SKIP = "run", "skip"
# Custom resource properties (infra/migrations.py sets them).
HASH_PROPERTY = "MigrationsHash"
SECRET_PROPERTIES = {"admin": "AdminSecretArn", "app": "AppSecretArn", "admin_token": "AdminTokenSecretArn"}


def _admin_conninfo(secret: dict[str, Any], dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=secret["host"], port=int(secret.get("port", 5432)), dbname=dbname,
                         user=secret["username"], password=secret["password"], sslmode="require")


def admin_token_from_secret(secret: dict[str, Any]) -> str:
    """CloudFormation cannot prefix a generated value: the secret holds ``{"prefix": "pat_",
    "token": "<random>"}`` and the token is their concatenation (docs/adr/0014)."""
    token = str(secret["token"])
    return token if token.startswith("pat_") else str(secret.get("prefix", "pat_")) + token


def is_rollback(event: dict[str, Any], bundled_hash: str) -> bool:
    """An Update whose migrations are not this code's: CloudFormation rolling the custom
    resource back to an earlier template (the function still runs the newer code)."""
    wanted = (event.get("ResourceProperties") or {}).get(HASH_PROPERTY)
    return event.get("RequestType") == "Update" and bool(wanted) and wanted != bundled_hash


def changed_secrets(event: dict[str, Any]) -> list[str]:
    """The secret properties an Update changes (a replaced secret has a new ARN)."""
    new, old = event.get("ResourceProperties") or {}, event.get("OldResourceProperties") or {}
    return sorted(key for key in SECRET_PROPERTIES.values() if new.get(key) != old.get(key))


def _secret_arns(event: dict[str, Any]) -> dict[str, str | None]:
    """The properties' ARNs, else the function's settings (which CDK sets to the same)."""
    settings = get_settings()
    props = event.get("ResourceProperties") or {}
    defaults = {"admin": settings.database_admin_secret_arn, "app": settings.database_secret_arn,
                "admin_token": settings.admin_token_secret_arn}
    arns = {name: props.get(key) or defaults[name] for name, key in SECRET_PROPERTIES.items()}
    if not (arns["admin"] and arns["app"]):
        raise RuntimeError("DATABASE_ADMIN_SECRET_ARN and DATABASE_SECRET_ARN must be set")
    return arns


def _credentials(event: dict[str, Any]) -> tuple[str, str, str | None]:
    """(owner conninfo, application role password, platform admin token or None)."""
    arns = _secret_arns(event)
    assert arns["admin"] and arns["app"]
    admin = get_secret_json(arns["admin"])
    app_password = str(get_secret_json(arns["app"])["password"])
    token = admin_token_from_secret(get_secret_json(arns["admin_token"])) if arns["admin_token"] else None
    return _admin_conninfo(admin, get_settings().database_name), app_password, token


def on_event(event: dict[str, Any], bundled_hash: str) -> dict[str, Any]:
    if event.get("RequestType") == "Delete":
        # The schema outlives the stack's custom resource; deleting data is a human decision.
        return {"PhysicalResourceId": PHYSICAL_ID, PHASE_KEY: SKIP}
    if is_rollback(event, bundled_hash):
        logger.warning("rollback to migrations %s: this code bundles %s; the schema stays as it is "
                       "(migrations only move forward)",
                       (event.get("ResourceProperties") or {}).get(HASH_PROPERTY), bundled_hash)
        changed = changed_secrets(event)
        if changed:
            # The rolled-back template names the previous secrets again: their password and
            # token must be the ones installed, or the proxy's logins fail.
            from shared.db.migrate import install_app_password
            from shared.platform.bootstrap import install_admin_token

            logger.info("rollback re-installs the credentials of %s", changed)
            conninfo, app_password, token = _credentials(event)
            install_app_password(conninfo, app_password)
            if token:
                install_admin_token(conninfo, token)
        return {"PhysicalResourceId": PHYSICAL_ID, PHASE_KEY: SKIP, "Data": {"Skipped": "rollback"}}
    return {"PhysicalResourceId": PHYSICAL_ID, PHASE_KEY: RUN}


def is_complete(event: dict[str, Any], deadline: float) -> dict[str, Any]:
    if event.get(PHASE_KEY) != RUN:
        return {"IsComplete": True}
    from shared.db.migrate import apply_migrations_until
    from shared.platform.bootstrap import install_admin_token, refresh_model_catalog

    conninfo, app_password, token = _credentials(event)
    progress = apply_migrations_until(conninfo, app_password=app_password, deadline=deadline)
    if not progress.complete:
        logger.info("applied migrations %s; %s left for the next poll", progress.applied, progress.pending)
        return {"IsComplete": False}
    if token:
        install_admin_token(conninfo, token)
    catalog = refresh_model_catalog(conninfo)
    return {"IsComplete": True, "Data": {"AppliedMigrations": ",".join(map(str, progress.applied)),
                                         "ModelCount": str(catalog["model_count"])}}


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from shared.db.migrate import migrations_hash

    if PHASE_KEY in event:
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
        return is_complete(event, deadline)
    return on_event(event, migrations_hash())


handler = powertools_handler(_handle)
