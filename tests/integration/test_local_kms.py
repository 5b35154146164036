"""Tenant credentials encrypted by the local runtime's KMS key still decrypt after a restart
(moto keeps keys in memory; the runtime keeps the key in its state dir)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from infra.local.aws import LocalAws
from infra.local.invoker import LocalInvoker
from shared.config import get_settings
from shared.models.credentials import default_cipher


def test_credentials_survive_a_restart(tmp_path: Path, app_env: None) -> None:
    tenant = uuid.uuid4()
    first = LocalAws(tmp_path, LocalInvoker())
    first.start()
    try:
        key_id = get_settings().credentials_kms_key_id
        ciphertext = default_cipher().encrypt("sk-local-secret", tenant)
    finally:
        first.stop()
    assert (tmp_path / "kms-credentials-key.json").stat().st_mode & 0o077 == 0
    second = LocalAws(tmp_path, LocalInvoker())
    second.start()
    try:
        assert get_settings().credentials_kms_key_id == key_id
        cipher = default_cipher()
        assert cipher.decrypt(ciphertext, tenant) == "sk-local-secret"
        # Bound to its tenant: another tenant's context cannot decrypt it.
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError):
            cipher.decrypt(ciphertext, uuid.uuid4())
    finally:
        second.stop()
