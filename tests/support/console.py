"""The console as a browser uses it, over the in-process app: sign in, keep the CSRF token,
post forms and script calls with it."""

from __future__ import annotations

import re
from typing import Any

import httpx


class Console:
    """A browser's view of the console: cookies, and the CSRF token of the signed-in page."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.csrf = ""
        self.api_key = ""

    async def sign_in(self, api_key: str, expect: int = 303) -> httpx.Response:
        self.api_key = api_key
        page = await self.client.get("/console/login")
        token = re.search(r'name="signin" value="([^"]+)"', page.text)
        assert token is not None
        response = await self.client.post(
            "/console/login", data={"signin": token.group(1), "apiKey": api_key}
        )
        assert response.status_code == expect, response.text
        if expect == 303:
            home = await self.get("/console/definitions")
            found = re.search(r'data-csrf="([^"]+)"', home.text)
            assert found is not None
            self.csrf = found.group(1)
        return response

    async def get(self, path: str, expect: int = 200, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response

    async def post(self, path: str, data: dict[str, str], expect: int = 303) -> httpx.Response:
        response = await self.client.post(path, data={"csrf": self.csrf, **data})
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response

    async def script(self, path: str, body: Any, expect: int = 200) -> Any:
        response = await self.client.post(path, json=body, headers={"X-CSRF-Token": self.csrf})
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response.json()

    async def create(self, body: str) -> str:
        response = await self.post("/console/definitions/new", {"body": body})
        location = response.headers["location"]
        assert location.startswith("/console/definitions/")
        return location
