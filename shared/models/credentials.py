"""Provider credentials: references resolved for platform models, KMS-encrypted keys for
tenant models (bound to the tenant through the encryption context)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from shared.errors import Unavailable
from shared.models.errors import ModelNotConfigured
from shared.models.spec import Connection, ModelSpec
from shared.models.spec import Protocol as ModelProtocol
from shared.models.types import Credentials

if TYPE_CHECKING:
    from shared.db.database import Database
    from shared.models.resolver import ResolvedModel


class Cipher(Protocol):
    def encrypt(self, plaintext: str, tenant_id: uuid.UUID) -> bytes: ...

    def decrypt(self, ciphertext: bytes, tenant_id: uuid.UUID) -> str: ...


class KmsCipher:
    """AWS KMS (moto's in the local runtime): ciphertext only decrypts for the same tenant."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self._kms = kms
        self._key_id = key_id

    def encrypt(self, plaintext: str, tenant_id: uuid.UUID) -> bytes:
        response = self._kms.encrypt(KeyId=self._key_id, Plaintext=plaintext.encode(),
                                     EncryptionContext={"tenant_id": str(tenant_id)})
        return bytes(response["CiphertextBlob"])

    def decrypt(self, ciphertext: bytes, tenant_id: uuid.UUID) -> str:
        response = self._kms.decrypt(CiphertextBlob=ciphertext, EncryptionContext={"tenant_id": str(tenant_id)})
        return bytes(response["Plaintext"]).decode()


def default_cipher() -> Cipher:
    from shared.aws.clients import client
    from shared.config import get_settings

    key_id = get_settings().credentials_kms_key_id
    if not key_id:
        raise Unavailable("Credential encryption is not configured (CREDENTIALS_KMS_KEY_ID)",
                          code="sys_credentials_unconfigured")
    return KmsCipher(client("kms"), key_id)


def stored_api_key(db: Database, cipher: Callable[[], Cipher], model: ResolvedModel) -> str | None:
    """A tenant model's API key, decrypted (None: the model stores none)."""
    from shared.models import repository

    if model.tenant_id is None or not model.has_credentials:
        return None
    with db.transaction(model.tenant_id) as conn:
        ciphertext = repository.get_credentials(conn, model.tenant_id, model.id)
    return cipher().decrypt(ciphertext, model.tenant_id) if ciphertext else None


def resolve_reference(ref: str) -> str | None:
    """``env:NAME``: the variable NAME of the local environment, else the key NAME of the
    deployment's provider-keys secret (JSON, in Secrets Manager: keys never sit in Lambda
    environment variables); ``secret:<id>``: a secret of its own."""
    kind, _, name = ref.partition(":")
    if kind == "env":
        from shared.config import environment_value, get_settings

        value = environment_value(name)
        arn = get_settings().provider_keys_secret_arn
        if value is None and arn:
            from shared.aws.secrets import get_secret_json

            found = get_secret_json(arn).get(name)
            value = str(found) if found else None
        return value
    if kind == "secret":
        from shared.aws.secrets import get_secret_string

        return get_secret_string(name)
    raise ValueError(f"unknown credential reference {ref!r}")


def platform_credentials(spec: ModelSpec) -> Credentials:
    """Credentials of a catalog model; a missing key is a clear ``model_not_configured``."""
    connection: Connection = spec.connection
    api_key = None
    if connection.api_key_ref:
        api_key = resolve_reference(connection.api_key_ref)
        if not api_key:
            setting = connection.api_key_ref.removeprefix("env:").removeprefix("secret:")
            raise ModelNotConfigured(
                f"Model {spec.name} needs {setting}: set it for the deployment, or add a tenant model "
                f"with its own credentials (POST /api/v1/models)",
                details={"model": spec.name, "missing": setting})
    elif spec.protocol in (ModelProtocol.OPENAI, ModelProtocol.ANTHROPIC) and connection.base_url is None:
        raise ModelNotConfigured(f"Model {spec.name} has no API key reference", details={"model": spec.name})
    return Credentials(api_key=api_key, base_url=connection.base_url, region=connection.region)


def _bedrock_reachable(model: ResolvedModel) -> bool:
    """Bedrock is called with the function's AWS role: a deployed function reaches it (its
    entry grants bedrock:InvokeModel). The local runtime's AWS is moto, which cannot run
    Converse or an embedding model, so there only a model naming its own endpoint can answer."""
    from shared.config import get_settings

    return model.spec.connection.base_url is not None or get_settings().stratus_runtime != "local"


def configured(model: ResolvedModel) -> bool:
    """True only where a call can succeed (as far as can be told without making one): what the
    models API shows as ``configured``, and what a Dify import keeps a file's model by."""
    if model.spec.protocol == ModelProtocol.BEDROCK and not _bedrock_reachable(model):
        return False
    if model.source == "tenant":
        return model.has_credentials or model.spec.connection.base_url is not None \
            or model.spec.protocol == ModelProtocol.BEDROCK
    try:
        platform_credentials(model.spec)
    except ModelNotConfigured:
        return False
    return True
