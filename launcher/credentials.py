"""The MLflow passwords `churnops up` generates once and keeps in the state folder.

One file, readable by its owner only (0600, in a 0700 folder), so a second start reuses the
accounts the users database already holds and CLI commands can log in as the training account.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path

ADMIN = "admin"
TRAINING = "churnops-training"
SERVING = "churnops-serving"
USERNAME_VAR = "MLFLOW_TRACKING_USERNAME"
PASSWORD_VAR = "MLFLOW_TRACKING_PASSWORD"  # noqa: S105 - the variable's name, not a password
FILE_NAME = "credentials.json"


@dataclass(frozen=True)
class Credentials:
    admin_password: str
    training_password: str
    serving_password: str
    flask_secret_key: str

    def password(self, username: str) -> str:
        return {
            ADMIN: self.admin_password,
            TRAINING: self.training_password,
            SERVING: self.serving_password,
        }[username]

    def login_env(self, username: str) -> dict[str, str]:
        """The standard variables every MLflow client (MlflowClient, mlflow.*) reads."""
        return {USERNAME_VAR: username, PASSWORD_VAR: self.password(username)}


def credentials_path(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def generate() -> Credentials:
    return Credentials(*(secrets.token_urlsafe(24) for _ in range(4)))


def read_credentials(state_dir: Path) -> Credentials | None:
    path = credentials_path(state_dir)
    if not path.exists():
        return None
    return Credentials(**json.loads(path.read_text()))


def ensure_credentials(state_dir: Path) -> tuple[Credentials, bool]:
    """The stored credentials, generated and written on the first call; True when new."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    path = credentials_path(state_dir)
    existing = read_credentials(state_dir)
    if existing is not None:
        path.chmod(0o600)
        return existing, False
    credentials = generate()
    partial = path.with_suffix(".tmp")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(credentials), out, indent=2)
    partial.replace(path)
    return credentials, True


def admin_notice(credentials: Credentials, created: bool, state_dir: Path) -> str | None:
    """What `churnops up` prints about the admin login: the password on the first start only
    (later starts reuse it; it stays in the file)."""
    if not created:
        return None
    return (
        f"MLflow admin login: user '{ADMIN}', password {credentials.admin_password} (shown once; "
        f"kept with the service accounts' passwords in {credentials_path(state_dir)})"
    )


def use_stored_login(state_dir: Path, environ: MutableMapping[str, str] = os.environ) -> bool:
    """Log this process's MLflow clients in as the training account of the stack in
    `state_dir`, unless the caller chose a login (MLFLOW_TRACKING_USERNAME is set)."""
    if USERNAME_VAR in environ:
        return False
    credentials = read_credentials(state_dir)
    if credentials is None:
        return False
    environ.update(credentials.login_env(TRAINING))
    return True
