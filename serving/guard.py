"""ASGI guard in front of the prediction APIs: bearer token, JSON only, bounded bodies.

BentoML also accepts its own pickle encoding between services; a public API must not unpickle
client bytes, so anything but `application/json` is refused before BentoML sees it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        protected_paths: tuple[str, ...],
        max_body_bytes: int,
        token: str | None = None,
    ) -> None:
        self.app = app
        self.protected_paths = protected_paths
        self.max_body_bytes = max_body_bytes
        self.expected_auth = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.protected_paths:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.expected_auth is not None and not hmac.compare_digest(
            headers.get(b"authorization", b""), self.expected_auth
        ):
            return await _reject(
                send,
                401,
                "missing or invalid bearer token",
                "authorization",
                [(b"www-authenticate", b"Bearer")],
            )
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if media_type != b"application/json":
            return await _reject(send, 415, "Content-Type must be application/json", "content-type")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _reject(send, 413, self._too_large(), "content-length")
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if len(body) > self.max_body_bytes:
                return await _reject(send, 413, self._too_large(), "content-length")
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await self.app(scope, replay, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"


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
