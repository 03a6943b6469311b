"""Scoped API tokens: which bearer tokens may call which routes.

A token has one scope: `predict` (/predict, /predict_batch), `feedback` (/feedback) or `all`
(every protected route). Several tokens may be valid at once, so a token is rotated without
downtime: add the new one, move the clients, remove the old one. Tokens come from
`CHURNOPS_API_TOKEN` (scope `all`), `CHURNOPS_API_TOKENS` (`scope:token` entries, comma
separated) and `CHURNOPS_API_TOKENS_FILE` (one `scope:token` per line, `#` comments), which is
re-read when it changes, so a rotation needs no restart (a Kubernetes Secret mounted as a file
updates in place).
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from churnops.settings import Settings

SCOPES = ("predict", "feedback", "all")
ROUTE_SCOPES = {"/predict": "predict", "/predict_batch": "predict", "/feedback": "feedback"}
FILE_CHECK_SECONDS = 1.0


class TokenConfigError(ValueError):
    """A token entry that cannot be understood, named with where it came from."""


@dataclass(frozen=True)
class TokenSet:
    tokens: tuple[tuple[bytes, str], ...]  # (b"Bearer <token>", scope)

    @classmethod
    def parse(cls, entries: Iterable[str], where: str) -> TokenSet:
        tokens = []
        for number, entry in enumerate(entries, start=1):
            entry = entry.strip()
            if not entry or entry.startswith("#"):
                continue
            scope, sep, token = entry.partition(":")
            scope, token = scope.strip(), token.strip()
            if not sep or scope not in SCOPES or not token:
                raise TokenConfigError(
                    f"{where}, entry {number}: expected 'scope:token' with scope one of "
                    f"{', '.join(SCOPES)}"
                )
            tokens.append((f"Bearer {token}".encode(), scope))
        return cls(tuple(tokens))

    def __add__(self, other: TokenSet) -> TokenSet:
        return TokenSet(self.tokens + other.tokens)

    @property
    def enabled(self) -> bool:
        return bool(self.tokens)

    def scope_of(self, authorization: bytes) -> str | None:
        """The scope of the presented `Authorization` header, or None. Every configured token is
        compared, in constant time each, so timing tells neither which nor how much matched."""
        found = None
        for expected, scope in self.tokens:
            if hmac.compare_digest(authorization, expected) and found is None:
                found = scope
        return found


def allows(scope: str | None, path: str) -> bool:
    return scope == "all" or (scope is not None and ROUTE_SCOPES.get(path) == scope)


class TokenSource:
    """The tokens in force now: the fixed ones plus the file's, re-read when the file changes
    (its modification time and size, looked at no more than once a second)."""

    def __init__(self, fixed: TokenSet, file: Path | None = None) -> None:
        self.fixed = fixed
        self.file = file
        self._lock = threading.Lock()
        self._checked = 0.0
        self._stamp: tuple[int, int] | None = None
        self._current = fixed
        if file is not None:
            self._reload()

    def current(self) -> TokenSet:
        if self.file is not None and time.monotonic() - self._checked >= FILE_CHECK_SECONDS:
            with self._lock:
                if time.monotonic() - self._checked >= FILE_CHECK_SECONDS:
                    self._reload()
        return self._current

    def _reload(self) -> None:
        """A file that cannot be read or parsed keeps the tokens in force (a half-written
        Secret must not lock every client out); the start-up load raises instead."""
        self._checked = time.monotonic()
        try:
            stat = os.stat(self.file)
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return
            loaded = TokenSet.parse(self.file.read_text().splitlines(), str(self.file))
        except (OSError, TokenConfigError):
            if self._stamp is None:
                raise
            return
        self._stamp = stamp
        self._current = self.fixed + loaded


def configured_tokens(settings: Settings) -> TokenSource:
    """`CHURNOPS_API_TOKEN` (scope `all`), `CHURNOPS_API_TOKENS` and `CHURNOPS_API_TOKENS_FILE`;
    none set means no token is needed (loopback development)."""
    fixed = TokenSet(())
    if settings.api_token is not None:
        fixed += TokenSet.parse([f"all:{settings.api_token.get_secret_value()}"], "token")
    if settings.api_tokens is not None:
        entries = settings.api_tokens.get_secret_value().split(",")
        fixed += TokenSet.parse(entries, "CHURNOPS_API_TOKENS")
    return TokenSource(fixed, settings.api_tokens_file)
