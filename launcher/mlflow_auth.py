"""MLflow's own auth app (`mlflow server --app-name basic-auth`) for churnops: its config file,
and the two service accounts every component logs in with, provisioned over MLflow's REST API.

`churnops-training` (Dagster) registers versions and moves aliases; `churnops-serving` (Bento)
only reads. Everyone else gets the default READ; the admin manages users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from launcher.credentials import ADMIN, SERVING, TRAINING, Credentials
from registry.interface import MONITORING_EXPERIMENT, SCORING_EXPERIMENT

APP_NAME = "basic-auth"
AUTH_INI = """\
# Written by `churnops up` on every start: MLflow's auth app (`mlflow server --app-name
# basic-auth`). The admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD.
[mlflow]
default_permission = READ
database_uri = {database_uri}
admin_username = {admin}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
# A login is checked (PBKDF2) once a minute per worker, not on every request.
auth_cache_ttl_seconds = 60
"""
# Moving @champion off the challenger deletes the `challenger` alias, which MLflow allows only
# with MANAGE on the model; the version-level EDIT keeps version deletion out of reach.
TRAINING_MODEL_PERMISSION = "MANAGE"
TRAINING_VERSION_PERMISSION = "EDIT"
USERS = "/api/2.0/mlflow/users"
PERMISSIONS = "/api/3.0/mlflow/users/permissions"
EXPERIMENTS = "/api/2.0/mlflow/experiments"
MODELS = "/api/2.0/mlflow/registered-models"


class ProvisioningError(RuntimeError):
    """MLflow refused an admin call; the message names the call and MLflow's answer."""


@dataclass(frozen=True)
class Grant:
    username: str
    resource_type: str
    resource_id: str
    permission: str


def auth_ini(database_uri: str) -> str:
    return AUTH_INI.format(database_uri=database_uri, admin=ADMIN)


def write_auth_ini(path: Path, database_uri: str) -> Path:
    """The config file, with the folder of a SQLite users database made."""
    if database_uri.startswith("sqlite:///"):
        Path(database_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(auth_ini(database_uri))
    return path


def server_env(ini_path: Path, credentials: Credentials) -> dict[str, str]:
    """What the auth app reads at start: its config, the first admin password, and the Flask
    secret (the same for every worker behind one users database)."""
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(ini_path),
        "MLFLOW_AUTH_ADMIN_PASSWORD": credentials.admin_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.flask_secret_key,
    }


def churnops_experiments(training_experiment: str) -> list[str]:
    """Every experiment churnops writes runs to."""
    return [training_experiment, MONITORING_EXPERIMENT, SCORING_EXPERIMENT]


def account_grants(model_name: str, experiment_ids: Iterable[str]) -> list[Grant]:
    ids = list(experiment_ids)
    return [
        Grant(TRAINING, "registered_model", model_name, TRAINING_MODEL_PERMISSION),
        Grant(TRAINING, "registered_model_version", "*", TRAINING_VERSION_PERMISSION),
        *(Grant(TRAINING, "experiment", eid, "EDIT") for eid in ids),
        Grant(SERVING, "registered_model", model_name, "READ"),
        *(Grant(SERVING, "experiment", eid, "READ") for eid in ids),
    ]


class AuthAdmin:
    """MLflow's user and permission REST API, called as the admin."""

    def __init__(self, tracking_uri: str, login: tuple[str, str], timeout: float = 30.0) -> None:
        self.username = login[0]
        self.http = httpx.Client(base_url=tracking_uri.rstrip("/"), auth=login, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def _call(
        self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs
    ) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ProvisioningError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in ok:
            raise ProvisioningError(
                f"{method} {path} as '{self.username}': HTTP {response.status_code} "
                f"{response.text[:300]}"
            )
        return response

    def ensure_user(self, username: str, password: str) -> None:
        """Create the account, or set its password (the stored one wins)."""
        found = self._call("GET", f"{USERS}/get", (200, 404), params={"username": username})
        if found.status_code == 404:
            self._call("POST", f"{USERS}/create", json={"username": username, "password": password})
        else:
            body = {"username": username, "password": password}
            self._call("PATCH", f"{USERS}/update-password", json=body)

    def experiment_id(self, name: str) -> str:
        """The experiment's id, creating it first: permissions attach to ids."""
        params = {"experiment_name": name}
        found = self._call("GET", f"{EXPERIMENTS}/get-by-name", (200, 404), params=params)
        if found.status_code == 200:
            return found.json()["experiment"]["experiment_id"]
        created = self._call("POST", f"{EXPERIMENTS}/create", (200, 400), json={"name": name})
        if created.status_code == 200:
            return created.json()["experiment_id"]
        # Created by someone else in between.
        return self._call("GET", f"{EXPERIMENTS}/get-by-name", params=params).json()["experiment"][
            "experiment_id"
        ]

    def ensure_registered_model(self, name: str) -> None:
        """The model must exist before anyone looks up its aliases: for a missing model the
        auth app answers 403, not 404, so "no champion yet" would read as "not allowed"."""
        found = self._call("GET", f"{MODELS}/get", (200, 404), params={"name": name})
        if found.status_code == 404:
            self._call("POST", f"{MODELS}/create", (200, 400), json={"name": name})

    def direct_grants(self, username: str) -> dict[tuple[str, str], str]:
        """The user's own grants (not a role's): (type, id) -> permission."""
        listed = self._call("GET", f"{PERMISSIONS}/list", params={"username": username}).json()
        return {
            (row["resource_type"], row["resource_pattern"]): row["permission"]
            for row in listed.get("permissions", [])
            if row["role_name"].startswith("__user_")
        }

    def apply(self, grants: Iterable[Grant]) -> list[Grant]:
        """Grant what is missing or different; the ones it changed."""
        changed = []
        existing: dict[str, dict[tuple[str, str], str]] = {}
        for grant in grants:
            held = existing.setdefault(grant.username, self.direct_grants(grant.username))
            current = held.get((grant.resource_type, grant.resource_id))
            if current == grant.permission:
                continue
            key = {
                "username": grant.username,
                "resource_type": grant.resource_type,
                "resource_id": grant.resource_id,
            }
            if current is not None:
                self._call("POST", f"{PERMISSIONS}/revoke", json=key)
            self._call("POST", f"{PERMISSIONS}/grant", json={**key, "permission": grant.permission})
            changed.append(grant)
        return changed


def provision_accounts(
    tracking_uri: str,
    admin: tuple[str, str],
    passwords: Mapping[str, str],
    model_name: str,
    experiments: Iterable[str],
) -> list[Grant]:
    """Idempotently: both accounts with these passwords, churnops' experiments and registered
    model, and the accounts' permissions on them, as the `admin` (username,
    password) login. Returns the grants it changed."""
    api = AuthAdmin(tracking_uri, admin)
    try:
        for username in (TRAINING, SERVING):
            api.ensure_user(username, passwords[username])
        ids = [api.experiment_id(name) for name in experiments]
        api.ensure_registered_model(model_name)
        return api.apply(account_grants(model_name, ids))
    finally:
        api.close()
