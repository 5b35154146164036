"""Deploy-time: apply SQL migrations and install the platform admin token.

Invoked by a CloudFormation custom resource (CDK Provider framework) on every deploy;
migrations are recorded, so a repeated run applies nothing.
"""

from __future__ import annotations

from typing import Any

from shared.aws.secrets import get_secret_json
from shared.config import get_settings
from shared.handler import powertools_handler
from shared.platform.bootstrap import bootstrap

PHYSICAL_ID = "stratus-database-schema"


def _admin_conninfo(secret: dict[str, Any], dbname: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(host=secret["host"], port=int(secret.get("port", 5432)), dbname=dbname,
                         user=secret["username"], password=secret["password"], sslmode="require")


def admin_token_from_secret(secret: dict[str, Any]) -> str:
    """CloudFormation cannot prefix a generated value: the secret holds ``{"prefix": "pat_",
    "token": "<random>"}`` and the token is their concatenation (docs/adr/0014)."""
    token = str(secret["token"])
    return token if token.startswith("pat_") else str(secret.get("prefix", "pat_")) + token


def _migrate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("RequestType") == "Delete":
        # The schema outlives the stack's custom resource; deleting data is a human decision.
        return {"PhysicalResourceId": PHYSICAL_ID}
    settings = get_settings()
    if not (settings.database_admin_secret_arn and settings.database_secret_arn):
        raise RuntimeError("DATABASE_ADMIN_SECRET_ARN and DATABASE_SECRET_ARN must be set")
    admin = get_secret_json(settings.database_admin_secret_arn)
    app_secret = get_secret_json(settings.database_secret_arn)
    admin_token = None
    if settings.admin_token_secret_arn:
        admin_token = admin_token_from_secret(get_secret_json(settings.admin_token_secret_arn))
    result = bootstrap(_admin_conninfo(admin, settings.database_name),
                       app_password=app_secret["password"], admin_token=admin_token)
    return {"PhysicalResourceId": PHYSICAL_ID,
            "Data": {"AppliedMigrations": ",".join(map(str, result["applied_migrations"]))}}


handler = powertools_handler(_migrate)
