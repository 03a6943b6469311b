"""The dependency audit of `./dev test` (.ci/audit.py): fails on a known vulnerability unless it
is ignored with a reason, and reports packages it could not check (fatal with AUDIT_STRICT=1).
pip-audit itself is replaced by a canned report here; `./dev test` runs the real one."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from launcher.stack import REPO_ROOT

pytestmark = pytest.mark.unit

spec = importlib.util.spec_from_file_location("ci_audit", REPO_ROOT / ".ci" / "audit.py")
audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit)

VULN = {"id": "GHSA-0000-0000-0000", "fix_versions": ["2.0"], "aliases": [], "description": ""}


def _fake_pip_audit(monkeypatch: pytest.MonkeyPatch, dependencies: list[dict]) -> list[list]:
    calls: list[list] = []

    def run(command, **_kwargs):
        calls.append(command)
        if "-o" in command and "pip_audit" in command:
            report = Path(command[command.index("-o") + 1])
            report.write_text(json.dumps({"dependencies": dependencies, "fixes": []}))
        return subprocess.CompletedProcess(command, 1 if dependencies else 0, "", "")

    monkeypatch.setattr(audit.subprocess, "run", run)
    return calls


def test_a_known_vulnerability_fails_the_audit(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setattr(audit, "IGNORE_FILE", tmp_path / "ignore.txt")
    (tmp_path / "ignore.txt").write_text("# nothing accepted\n")
    _fake_pip_audit(monkeypatch, [{"name": "pkg", "version": "1.0", "vulns": [VULN]}])
    assert audit.main("uv") == 1
    assert "pkg 1.0: GHSA-0000-0000-0000 (fixed in 2.0)" in capsys.readouterr().out


def test_ignored_vulnerabilities_need_a_reason_and_reach_pip_audit(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(audit, "IGNORE_FILE", tmp_path / "ignore.txt")
    (tmp_path / "ignore.txt").write_text("GHSA-1111-1111-1111\n")
    with pytest.raises(SystemExit, match="needs a one-line reason"):
        audit.main("uv")
    (tmp_path / "ignore.txt").write_text("GHSA-1111-1111-1111 no fix compatible with dagster\n")
    calls = _fake_pip_audit(monkeypatch, [{"name": "pkg", "version": "1.0", "vulns": []}])
    assert audit.main("uv") == 0
    assert "GHSA-1111-1111-1111" in calls[-1]


def test_unchecked_packages_are_reported_and_fatal_when_strict(
    monkeypatch, tmp_path, capsys
) -> None:
    monkeypatch.setattr(audit, "IGNORE_FILE", tmp_path / "ignore.txt")
    (tmp_path / "ignore.txt").write_text("")
    _fake_pip_audit(monkeypatch, [{"name": "pkg", "version": "1.0", "skip_reason": "not found"}])
    assert audit.main("uv") == 0
    assert "1 packages could not be checked" in capsys.readouterr().err
    monkeypatch.setenv("AUDIT_STRICT", "1")
    assert audit.main("uv") == 1


def test_the_committed_ignore_file_parses() -> None:
    assert all(reason for reason in audit.ignored_vulns().values())
