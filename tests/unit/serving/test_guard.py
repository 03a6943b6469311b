"""The request guard in-process through an ASGI client: deny by default, JSON only, size cap."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from serving.guard import OPEN_PATHS, RequestGuard
from serving.tokens import TokenSet, TokenSource

pytestmark = pytest.mark.unit

TOKEN = "unit-test-token"  # noqa: S105 - a fixture value, not a secret
AUTH = {"authorization": f"Bearer {TOKEN}"}
AUTH_HEADER = [(b"authorization", f"Bearer {TOKEN}".encode())]
LIMIT = 1000


async def _echo(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"path": request.url.path, "bytes": len(body)})


async def _ok(_: Request) -> Response:
    return PlainTextResponse("ok")


async def _socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


def _app() -> Starlette:
    """Stands in for the BentoML app: the open paths plus routes the guard never heard of."""
    routes = [Route(path, _ok) for path in OPEN_PATHS]
    routes += [
        Route("/brand_new_route", _echo, methods=["GET", "POST"]),
        Route("/predict", _echo, methods=["POST"]),
        Mount("/static_content", routes=[Route("/swagger-ui.css", _ok)]),
        Mount("/admin", routes=[Route("/reload", _echo, methods=["POST"])]),
        WebSocketRoute("/stream", _socket),
    ]
    return Starlette(routes=routes)


def _guarded(token: str | None = TOKEN) -> RequestGuard:
    return RequestGuard(_app(), max_body_bytes=LIMIT, tokens=_tokens(token))


def _tokens(token: str | None) -> TokenSource:
    return TokenSource(TokenSet.parse([f"all:{token}"] if token else [], "test"))


def _call(app, method: str, path: str, **kwargs) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://guard") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/brand_new_route"), ("POST", "/brand_new_route"), ("POST", "/admin/reload")],
)
def test_a_route_nobody_listed_needs_the_token(method: str, path: str) -> None:
    app = _guarded()
    body = {"json": {"a": 1}} if method == "POST" else {}
    refused = _call(app, method, path, **body)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert refused.json()["detail"][0]["loc"] == ["header", "authorization"]
    wrong = _call(app, method, path, headers={"authorization": f"Bearer {TOKEN}x"}, **body)
    assert wrong.status_code == 401
    allowed = _call(app, method, path, headers=AUTH, **body)
    assert allowed.status_code == 200
    assert allowed.json()["path"] == path


@pytest.mark.parametrize("path", [*sorted(OPEN_PATHS), "/static_content/swagger-ui.css"])
def test_the_open_list_answers_without_a_token(path: str) -> None:
    response = _call(_guarded(), "GET", path)
    assert response.status_code == 200
    assert response.text == "ok"


def test_open_means_exact_paths_not_look_alikes() -> None:
    for path in ("/healthz/", "/modelx", "/static_contentx/a.css", "/predict"):
        assert _call(_guarded(), "GET", path).status_code == 401, path


def test_without_a_configured_token_everything_is_reachable() -> None:
    assert _call(_guarded(token=None), "GET", "/brand_new_route").status_code == 200


def _websocket(headers: dict[str, str]) -> list[dict]:
    """The messages the app sends for one WebSocket handshake (raw ASGI: no client needed)."""
    incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    sent: list[dict] = []
    scope = {
        "type": "websocket",
        "path": "/stream",
        "raw_path": b"/stream",
        "root_path": "",
        "scheme": "ws",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "subprotocols": [],
    }

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(_guarded()(scope, receive, send))
    return sent


def test_a_websocket_route_nobody_listed_needs_the_token() -> None:
    assert _websocket({}) == [{"type": "websocket.close", "code": 1008}]
    accepted = _websocket(AUTH)
    assert accepted[0]["type"] == "websocket.accept"
    assert {"type": "websocket.send", "text": "hello"} in [
        {k: v for k, v in m.items() if k in ("type", "text")} for m in accepted
    ]


@pytest.mark.parametrize("path", ["/healthz", "/brand_new_route"])
def test_a_declared_length_over_the_limit_is_refused_on_every_path(path: str) -> None:
    response = _call(_guarded(), "POST", path, json={"pad": "x" * LIMIT}, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"] == f"request body larger than {LIMIT} bytes"


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives() -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            sent.append(1)
            yield b'{"pad": "' + b"x" * 100 + b'"},'

    headers = {**AUTH, "content-type": "application/json"}
    response = _call(_guarded(), "POST", "/brand_new_route", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert len(sent) < 50  # refused once over the limit, not after reading everything


def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 100

    headers = {**AUTH, "content-type": "application/json"}
    response = _call(_guarded(), "POST", "/brand_new_route", content=chunks(), headers=headers)
    assert response.status_code == 200
    assert response.json()["bytes"] == 500


@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.bentoml+pickle", "application/octet-stream", "text/plain", None],
)
@pytest.mark.parametrize("path", ["/predict", "/healthz", "/brand_new_route"])
def test_bodies_other_than_json_are_refused_on_every_path(
    path: str, content_type: str | None
) -> None:
    headers = {**AUTH, "content-type": content_type} if content_type else AUTH
    payload = pickle.dumps({"customer": {"tenure": 1}})
    response = _call(_guarded(), "POST", path, content=payload, headers=headers)
    assert response.status_code == 415
    assert response.json()["detail"][0]["loc"] == ["header", "content-type"]


def test_a_post_without_a_body_still_needs_json() -> None:
    assert _call(_guarded(), "POST", "/brand_new_route", headers=AUTH).status_code == 415


def test_json_with_a_charset_passes() -> None:
    headers = {**AUTH, "content-type": "Application/JSON; charset=utf-8"}
    response = _call(_guarded(), "POST", "/brand_new_route", content=b"{}", headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_probes_without_a_body_or_content_type_pass(method: str) -> None:
    response = _call(_guarded(), method, "/readyz")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_a_get_that_carries_a_body_is_checked_too() -> None:
    response = _call(_guarded(), "GET", "/brand_new_route", content=b"x", headers=AUTH)
    assert response.status_code == 415


@pytest.mark.parametrize("chunks", [[b'{"a": 1}'], [b'{"a"', b": 1", b"}"]])
def test_the_app_gets_the_body_as_one_message_held_once(chunks: list[bytes]) -> None:
    """A body read in one message reaches the app as that very object (no copy kept beside it
    for the request's life); one read in several is joined once."""
    received: list[dict] = []

    async def app(scope, receive, send) -> None:
        received.append(await receive())

    async def run() -> None:
        messages = iter(
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        )

        async def receive() -> dict:
            return next(messages)

        async def send(_: dict) -> None:
            raise AssertionError("the guard refused a valid request")

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/predict",
            "headers": [(b"content-type", b"application/json"), *AUTH_HEADER],
        }
        await RequestGuard(app, max_body_bytes=LIMIT, tokens=_tokens(TOKEN))(scope, receive, send)

    asyncio.run(run())
    (message,) = received
    assert message == {"type": "http.request", "body": b'{"a": 1}', "more_body": False}
    assert type(message["body"]) is bytes
    if len(chunks) == 1:
        assert message["body"] is chunks[0]
