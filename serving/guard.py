"""ASGI guard in front of the whole service: scoped bearer tokens, JSON only, bounded bodies.

Deny by default: every path needs a token (when any is configured) except the explicit open
list below, so a route added later is protected without anyone remembering to list it; a route
outside the predict and feedback scopes needs an `all` token (serving/tokens.py). An unknown
token gets 401, a known one used outside its scope 403. The body checks apply to every request
whatever its path.

BentoML also accepts its own pickle encoding between services; a public API must not unpickle
client bytes, so any body but `application/json` is refused before BentoML sees it.

Starlette 1.10 ships `RequestBodyLimitMiddleware`, but it raises from inside the app's `receive`,
where BentoML's endpoint wrapper turns the error into a 500, and it answers plain text; reading
the body here before the app runs keeps the 413 and the error shape of the other refusals.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from serving.tokens import TokenSource, allows

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Open without the token: what probes, scrapers and a person reading the docs need, and nothing
# that scores, stores or changes anything. `/model` is the model status (version, readiness,
# counters; no customer data) that `churnops status` and operators read without a token.
OPEN_PATHS: frozenset[str] = frozenset(
    {"/healthz", "/livez", "/readyz", "/metrics", "/docs", "/docs.json", "/model"}
)
# Swagger UI's own scripts and styles, loaded by the /docs page.
OPEN_PREFIXES: tuple[str, ...] = ("/static_content/",)
# Methods whose requests carry a body even when a client leaves out its headers.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# RFC 6455 "policy violation": how a WebSocket handshake without the token is refused.
WS_POLICY_VIOLATION = 1008


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        tokens: TokenSource | None = None,
        open_paths: Collection[str] = OPEN_PATHS,
        open_prefixes: tuple[str, ...] = OPEN_PREFIXES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.tokens = tokens
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = open_prefixes

    def is_open(self, path: str) -> bool:
        return path in self.open_paths or path.startswith(self.open_prefixes)

    def refusal(self, path: str, headers: dict[bytes, bytes]) -> int | None:
        """401 without a known token, 403 for a known token outside its scope, else None."""
        if self.is_open(path) or self.tokens is None:
            return None
        tokens = self.tokens.current()
        if not tokens.enabled:
            return None
        scope = tokens.scope_of(headers.get(b"authorization", b""))
        if scope is None:
            return 401
        return None if allows(scope, path) else 403

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if refused := self.refusal(scope["path"], headers):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            if refused == 403:
                reason = f"this token's scope does not cover {scope['path']}"
                return await _reject(send, 403, reason, "authorization")
            return await _reject(
                send,
                401,
                "missing or invalid bearer token",
                "authorization",
                [(b"www-authenticate", b"Bearer")],
            )
        if scope["type"] == "websocket" or not _carries_body(scope["method"], headers):
            return await self.app(scope, receive, send)
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            return await _reject(send, 415, "Content-Type must be application/json", "content-type")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _reject(send, 413, self._too_large(), "content-length")
        chunks, size = [], 0
        while True:
            message = await receive()
            chunks.append(chunk := message.get("body", b""))
            size += len(chunk)
            if size > self.max_body_bytes:
                return await _reject(send, 413, self._too_large(), "content-length")
            if not message.get("more_body", False):
                break
        # One copy of the body lives as long as the request: the app gets these very bytes.
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        del chunks
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"


def _carries_body(method: str, headers: dict[bytes, bytes]) -> bool:
    """A GET or HEAD probe has no body and passes; anything with one is checked."""
    declared = headers.get(b"content-length", b"0").strip()
    return method in BODY_METHODS or declared not in (b"", b"0") or b"transfer-encoding" in headers


async def _reject(
    send: Send, status: int, reason: str, header: str, extra: list | None = None
) -> None:
    body = json.dumps(
        {"error": reason, "detail": [{"loc": ["header", header], "msg": reason}]}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": body})
