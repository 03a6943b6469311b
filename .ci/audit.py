"""Dependency audit of the locked set, run by `./dev test`: pip-audit over `uv export` of
uv.lock (every extra and the dev group, with hashes). Fails on any known vulnerability not
listed in .ci/audit-ignore.txt; says how many packages the vulnerability service could not check,
and fails on those too when AUDIT_STRICT=1.

Usage: python .ci/audit.py UV_EXECUTABLE
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE_FILE = ROOT / ".ci" / "audit-ignore.txt"


def ignored_vulns() -> dict[str, str]:
    """`ID reason...` per line; a line without a reason is an error."""
    ignores: dict[str, str] = {}
    for number, line in enumerate(IGNORE_FILE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        vuln, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{IGNORE_FILE.name}:{number}: {vuln} needs a one-line reason")
        ignores[vuln] = reason.strip()
    return ignores


def main(uv: str) -> int:
    ignores = ignored_vulns()
    with tempfile.TemporaryDirectory() as tmp:
        requirements, report = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        export = [uv, "export", "--frozen", "--all-extras", "--no-emit-project", "--quiet"]
        subprocess.run([*export, "-o", str(requirements)], check=True, cwd=ROOT)  # noqa: S603
        command = [
            sys.executable,
            *("-m", "pip_audit", "-r", str(requirements), "--disable-pip", "--require-hashes"),
            *("--progress-spinner", "off", "-f", "json", "-o", str(report)),
        ]
        for vuln in ignores:
            command += ["--ignore-vuln", vuln]
        audit = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)  # noqa: S603
        if not report.exists():
            print(audit.stderr, file=sys.stderr)
            return 1
        dependencies = json.loads(report.read_text())["dependencies"]
    skipped = [d for d in dependencies if "skip_reason" in d]
    found = [(d, v) for d in dependencies for v in d.get("vulns", [])]
    print(
        f"dependency audit: {len(dependencies) - len(skipped)} of {len(dependencies)} locked "
        f"packages checked, {len(found)} known vulnerabilities "
        f"({len(ignores)} ignored in {IGNORE_FILE.name})"
    )
    for dependency, vuln in found:
        fixes = ", ".join(vuln.get("fix_versions") or []) or "no fixed version"
        print(f"  {dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    if skipped:
        print(
            f"WARNING: {len(skipped)} packages could not be checked, e.g. "
            f"{skipped[0]['skip_reason']}; set AUDIT_STRICT=1 to fail on this",
            file=sys.stderr,
        )
    if found or audit.returncode not in (0, 1):
        return 1
    return 1 if skipped and os.environ.get("AUDIT_STRICT") == "1" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
