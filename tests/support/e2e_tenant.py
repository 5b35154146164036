"""A tenant of the running local runtime whose models answer from the scripted OpenAI-protocol
server (tests/support/fake_openai.py): what every facade and chat e2e module starts from. Each
module subclasses it with the resources its tests create (agents, workflows, keys, clients)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningRuntime
    from tests.support.fake_openai import FakeOpenAI

# (name, capabilities): None leaves the capabilities to the model API's default.
Model = tuple[str, list[str] | None]
SCRIPTED: tuple[Model, ...] = (("scripted", None),)


class ScriptedTenant:
    def __init__(self, runtime: RunningRuntime, fake: FakeOpenAI, name: str, *,
                 owner: dict[str, str] | None = None, models: Sequence[Model] = SCRIPTED,
                 default_model: str | None = None) -> None:
        self.runtime = runtime
        self.http = httpx.Client(base_url=runtime.url, timeout=60)
        admin = {"Authorization": f"Bearer {runtime.admin_token}"}
        tenant = self.http.post("/api/v1/tenants", json={"name": name, **(owner or {})},
                                headers=admin).json()["data"]
        self.token: str = tenant["owner_token"]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        for model, capabilities in models:
            self.post("/api/v1/models", {"name": model, "protocol": "openai", "provider_model": f"gpt-{model}",
                                         "base_url": fake.base_url, "api_key": "sk-e2e-" + "x" * 24, "test": False,
                                         **({"capabilities": capabilities} if capabilities is not None else {})})
        if default_model is not None:
            response = self.http.put("/api/v1/models/defaults", headers=self.headers,
                                     json={"chat_model": default_model})
            assert response.status_code == 200, response.text

    def post(self, path: str, body: dict[str, Any], expect: int = 201) -> Any:
        """POST as the owner: the answer's data, or its whole body when an error is expected."""
        response = self.http.post(path, json=body, headers=self.headers)
        assert response.status_code == expect, response.text
        return response.json()["data"] if expect < 300 else response.json()
