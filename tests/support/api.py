"""A client of the API for integration tests: one token's requests, with status checks."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient


class ApiClient:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None, expect: int | None = None, **params: Any) -> Any:
        response = self.client.request(method, path, json=body, headers=self.headers, params=params or None)
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def data(self, method: str, path: str, body: Any = None, expect: int = 200, **params: Any) -> Any:
        return self.call(method, path, body, expect, **params).json()["data"]

    def error(self, method: str, path: str, body: Any, status: int, code: str, **params: Any) -> dict[str, Any]:
        response = self.call(method, path, body, **params)
        assert response.status_code == status, response.text
        payload: dict[str, Any] = response.json()
        assert payload["code"] == code, payload
        return payload
