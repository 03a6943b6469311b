"""Scoped API tokens: scopes per route, several valid at once, rotation through the file."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from serving import tokens as tokens_module
from serving.guard import RequestGuard
from serving.tokens import TokenConfigError, TokenSet, TokenSource, allows

pytestmark = pytest.mark.unit


async def _ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _app(source: TokenSource) -> RequestGuard:
    routes = [Route(p, _ok, methods=["POST"]) for p in ("/predict", "/feedback", "/reload")]
    return RequestGuard(Starlette(routes=routes), max_body_bytes=1000, tokens=source)


def _post(app, path: str, token: str) -> int:
    async def run() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://guard") as client:
            headers = {"authorization": f"Bearer {token}"}
            return (await client.post(path, json={}, headers=headers)).status_code

    return asyncio.run(run())


def test_each_scope_reaches_its_routes_only() -> None:
    source = TokenSource(TokenSet.parse(["predict:p1", "feedback:f1", "all:a1"], "env"))
    app = _app(source)
    assert [_post(app, path, "p1") for path in ("/predict", "/feedback", "/reload")] == [
        200,
        403,
        403,
    ]
    assert [_post(app, path, "f1") for path in ("/predict", "/feedback", "/reload")] == [
        403,
        200,
        403,
    ]
    assert [_post(app, path, "a1") for path in ("/predict", "/feedback", "/reload")] == [
        200,
        200,
        200,
    ]
    assert _post(app, "/predict", "nope") == 401


def test_two_tokens_of_one_scope_are_valid_at_once() -> None:
    app = _app(TokenSource(TokenSet.parse(["predict:old", "predict:new"], "env")))
    assert _post(app, "/predict", "old") == 200 and _post(app, "/predict", "new") == 200


@pytest.mark.parametrize("entry", ["predict", "admin:x", "predict:", ":x"])
def test_a_bad_entry_is_named(entry: str) -> None:
    with pytest.raises(TokenConfigError, match="CHURNOPS_API_TOKENS, entry 2"):
        TokenSet.parse(["all:ok", entry], "CHURNOPS_API_TOKENS")


def test_comments_and_blank_lines_are_skipped() -> None:
    parsed = TokenSet.parse(["# rotated 2026-11", "", "predict:t"], "file")
    assert parsed.scope_of(b"Bearer t") == "predict" and len(parsed.tokens) == 1


def test_every_token_is_compared_whichever_matches(monkeypatch) -> None:
    """No early exit: the number of comparisons does not depend on which token was sent."""
    calls: list[bytes] = []
    real = tokens_module.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return real(a, b)

    monkeypatch.setattr(tokens_module.hmac, "compare_digest", counting)
    parsed = TokenSet.parse(["predict:a", "predict:b", "all:c"], "env")
    for sent in (b"Bearer a", b"Bearer c", b"Bearer zzz"):
        calls.clear()
        parsed.scope_of(sent)
        assert len(calls) == 3


def test_the_file_is_reread_when_it_changes_and_a_broken_edit_keeps_the_old_tokens(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(tokens_module, "FILE_CHECK_SECONDS", 0.0)
    file = tmp_path / "tokens"
    file.write_text("predict:old\n")
    source = TokenSource(TokenSet.parse([], "env"), file)
    assert source.current().scope_of(b"Bearer old") == "predict"
    _rewrite(file, "predict:old\npredict:new\n")
    assert {source.current().scope_of(b"Bearer " + t) for t in (b"old", b"new")} == {"predict"}
    _rewrite(file, "predict:new\n")
    assert source.current().scope_of(b"Bearer old") is None
    _rewrite(file, "predict new-without-colon\n")
    assert source.current().scope_of(b"Bearer new") == "predict"


def test_a_broken_file_at_start_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("predict\n")
    with pytest.raises(TokenConfigError, match=str(file)):
        TokenSource(TokenSet.parse([], "env"), file)


def test_allows_maps_routes_to_scopes() -> None:
    assert allows("predict", "/predict_batch") and not allows("predict", "/model/reload")
    assert allows("all", "/anything") and not allows(None, "/predict")


def _rewrite(file: Path, text: str) -> None:
    """A new modification time even within the file system's timestamp granularity."""
    file.write_text(text)
    later = time.time_ns() + 1_000_000_000
    os.utime(file, ns=(later, later + len(text)))
