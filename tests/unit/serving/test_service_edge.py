"""The real prediction service behind the guard, in-process (BentoML's `to_asgi()`, no server):
every route it serves is either on the open list or refused without the token."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.routing import BaseRoute, Mount, Route

from serving.guard import OPEN_PATHS, OPEN_PREFIXES, RequestGuard
from serving.service import ChurnService
from serving.tokens import TokenSet, TokenSource

pytestmark = pytest.mark.unit

TOKEN = "edge-test-token"  # noqa: S105 - a fixture value, not a secret
# Open routes that answer without a running service instance (no lifespan here): /readyz and
# /metrics need the server's start-up, /model answers 503 until a model is loaded.
ANSWER_WITHOUT_START_UP = ("/healthz", "/livez", "/docs", "/docs.json")


def _paths(routes: list[BaseRoute], prefix: str = "") -> list[str]:
    """A requestable path per route, mounted apps included."""
    paths: list[str] = []
    for route in routes:
        if isinstance(route, Route):
            paths.append(prefix + route.path)
        elif isinstance(route, Mount):
            inner = getattr(route.app, "routes", None)
            if inner:
                paths += _paths(inner, prefix + route.path)
            else:
                paths.append(f"{prefix}{route.path}/any-file")
    return paths


@pytest.fixture(scope="module")
def edge() -> tuple[RequestGuard, list[str]]:
    configured = [opts for cls, opts in ChurnService.middlewares if cls is RequestGuard]
    assert len(configured) == 1
    app = ChurnService.to_asgi()
    tokens = TokenSource(TokenSet.parse([f"all:{TOKEN}"], "test"))
    return RequestGuard(app, **{**configured[0], "tokens": tokens}), _paths(app.routes)


def _get(app, path: str, **kwargs) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bento") as client:
            return await client.get(path, **kwargs)

    return asyncio.run(run())


def test_the_service_uses_the_guards_open_list_not_one_of_its_own(edge) -> None:
    guard, _ = edge
    assert (guard.open_paths, guard.open_prefixes) == (OPEN_PATHS, OPEN_PREFIXES)


def test_every_route_of_the_service_but_the_open_list_needs_the_token(edge) -> None:
    guard, paths = edge
    assert {"/predict", "/predict_batch", "/feedback", "/docs", "/model"} <= set(paths)
    closed = [path for path in paths if not guard.is_open(path)]
    assert {"/predict", "/predict_batch", "/feedback", "/schema.json", "/"} <= set(closed)
    for path in closed:
        response = _get(guard, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("path", [*ANSWER_WITHOUT_START_UP, "/static_content/swagger-ui.css"])
def test_the_open_routes_answer_without_a_token(edge, path: str) -> None:
    guard, _ = edge
    assert _get(guard, path).status_code == 200


def test_the_model_status_is_open_and_says_not_ready_before_start_up(edge) -> None:
    guard, _ = edge
    response = _get(guard, "/model")
    assert response.status_code == 503
    assert response.json()["ready"] is False
