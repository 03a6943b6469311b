"""Reading and writing contract files (YAML or TOML), with errors that name the file and key."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from churnops.contract.schema import Contract

# The Telco contract shipped with churnops: the default, and the schema of the demo generator.
DEFAULT_CONTRACT_PATH = Path(__file__).with_name("telco.yaml")
SUFFIXES = (".yaml", ".yml", ".toml", ".json")


class ContractFileError(ValueError):
    """A contract file that cannot be read or is invalid; the message names file and key."""


def _where(location: tuple[int | str, ...], raw: Any) -> str:
    """`features[3].kind`, with the feature's name when the list entry has one."""
    text = ""
    node = raw
    for part in location:
        if isinstance(part, int):
            entry = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            name_part = f" ({name})" if isinstance(name, str) and text == "features" else ""
            text += f"[{part}]{name_part}"
        else:
            text += f".{part}" if text else str(part)
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return text or "(top level)"


def _without_follow_on(errors: list[Any]) -> list[Any]:
    """Drop "too short" for a list whose entries failed: it only counts the failed entries."""
    failed_inside = {tuple(error["loc"][:-1]) for error in errors if len(error["loc"]) > 1}
    return [
        error
        for error in errors
        if not (error["type"] == "too_short" and tuple(error["loc"]) in failed_inside)
    ]


def parse_contract(raw: Any, source: str) -> Contract:
    """A Contract from parsed YAML/TOML; every problem in one message, each naming its key."""
    if not isinstance(raw, dict):
        raise ContractFileError(f"{source}: expected a mapping of keys, got {type(raw).__name__}")
    try:
        return Contract.model_validate(raw)
    except ValidationError as exc:
        lines = []
        for error in _without_follow_on(exc.errors()):
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            got = ""
            if error["type"] in ("literal_error", "enum") and "input" in error:
                got = f" (got {error['input']!r})"
            lines.append(f"  {_where(tuple(error['loc']), raw)}: {message}{got}")
        raise ContractFileError(f"{source}: invalid contract\n" + "\n".join(lines)) from None


def load_contract(path: str | Path) -> Contract:
    """Read and validate a contract file (.yaml, .yml, .toml or .json)."""
    file = Path(path)
    if not file.is_file():
        raise ContractFileError(f"{file}: no such contract file")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise ContractFileError(f"{file}: unsupported contract type {suffix!r}; use .yaml or .toml")
    try:
        text = file.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractFileError(f"{file}: cannot be read: {exc}") from exc
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ContractFileError(f"{file}: not valid {suffix[1:].upper()}: {exc}") from exc
    return parse_contract(raw, str(file))


def dump_contract(contract: Contract, header: str = "") -> str:
    """YAML for a contract: explicit defaults left out so a draft stays short to review."""
    data = contract.model_dump(mode="json", exclude_defaults=True)
    data = {"version": contract.version, **data}
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comment + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


@lru_cache(maxsize=8)
def _cached(path: str) -> Contract:
    return load_contract(path)


def configured_contract(path: str | Path | None) -> Contract:
    """The contract a deployment uses (`CHURNOPS_CONTRACT`, else the shipped Telco one),
    read once per process."""
    return _cached(str(Path(path or DEFAULT_CONTRACT_PATH).resolve()))


def telco_contract() -> Contract:
    """The shipped Telco contract (the demo generator's schema)."""
    return configured_contract(DEFAULT_CONTRACT_PATH)
