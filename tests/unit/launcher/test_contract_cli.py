"""`churnops contract infer|check`: help, stdout vs --out, exit codes and messages that name the
file, line and column (typer's CliRunner, no servers)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from churnops.contract import ContractError, load_contract, telco_contract
from churnops.data.sources import read_customer_chunks, read_customer_file
from churnops.data.synthetic import generate_customers
from examples.saas.generate import generate as generate_saas
from launcher import contract_cli
from launcher.cli import app

pytestmark = pytest.mark.unit

REVIEWED_SAAS = Path(__file__).resolve().parents[3] / "examples" / "saas" / "contract.yaml"


def run(*args: str, **env: str | None):
    return CliRunner().invoke(app, ["contract", *args], env=env or None, terminal_width=200)


@pytest.fixture
def saas_csv(tmp_path: Path) -> Path:
    path = tmp_path / "saas.csv"
    generate_saas(600, seed=3).to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("command", "expected"),
    [("infer", "--max-categories"), ("infer", "--no-id"), ("check", "--contract")],
)
def test_each_subcommand_has_help(command: str, expected: str) -> None:
    result = run(command, "--help")
    assert result.exit_code == 0
    assert expected in result.output


def test_contract_is_listed_in_the_top_level_help() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0 and "contract" in result.output


def test_infer_writes_a_reviewable_draft_to_stdout(saas_csv: Path) -> None:
    result = run("infer", str(saas_csv), "--dataset", "b2b")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# DRAFT data contract for saas.csv (600 rows)")
    assert "# - id column 'account_id'" in result.stdout
    draft = yaml.safe_load(result.stdout)
    assert draft["dataset"] == "b2b"
    assert draft["id_column"] == "account_id"
    assert draft["target"] == {"name": "churned", "positive": ["true"], "negative": ["false"]}


def test_infer_out_writes_the_file_and_refuses_to_overwrite_it(
    saas_csv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "contract.yaml"
    result = run("infer", str(saas_csv), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote a draft contract to {out}" in result.stderr
    assert load_contract(out).dataset == "saas"
    again = run("infer", str(saas_csv), "--out", str(out))
    assert again.exit_code == 2
    assert "exists" in again.stderr and "--force" in again.stderr
    assert run("infer", str(saas_csv), "--out", str(out), "--force").exit_code == 0


def test_infer_options_choose_target_and_id(saas_csv: Path) -> None:
    result = run("infer", str(saas_csv), "--no-id", "--target", "annual_billing")
    assert result.exit_code == 0, result.output
    draft = yaml.safe_load(result.stdout)
    assert "id_column" not in draft
    assert draft["target"]["name"] == "annual_billing"
    assert run("infer", str(saas_csv), "--no-id", "--id", "account_id").exit_code == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("usage,churn\n1,No\n2,No\n", "target 'churn' has one value ('No') in every row"),
        ("usage,outcome\n1,a\n2,b\n", "no target column found"),
    ],
    ids=["constant-target", "missing-target"],
)
def test_infer_data_that_cannot_be_drafted_exits_1_naming_the_file(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    result = run("infer", str(path))
    assert result.exit_code == 1
    assert f"{path}: " in result.stderr and message in result.stderr


def _unreadable(tmp_path: Path, kind: str) -> tuple[Path, str]:
    path = tmp_path / "data.csv"
    if kind == "missing":
        return path, "no such file"
    if kind == "directory":
        path.mkdir()
        return path, "not a file"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "file is empty"
    if kind == "latin-1":
        path.write_bytes("name,churn\nJosé,Yes\n".encode("latin-1"))
        return path, "not UTF-8 text"
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    return path, "unsupported file type '.xlsx'"


@pytest.mark.parametrize("command", ["infer", "check"])
@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "latin-1", "excel"])
def test_unreadable_files_exit_2_naming_the_file(tmp_path: Path, command: str, kind: str) -> None:
    path, message = _unreadable(tmp_path, kind)
    result = run(command, str(path))
    assert result.exit_code == 2
    assert f"error: {path}: {message}" in result.stderr


def test_check_of_a_matching_file_exits_0_with_a_summary(saas_csv: Path) -> None:
    result = run("check", str(saas_csv), "--contract", str(REVIEWED_SAAS))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"{saas_csv}: 600 rows match contract 'b2b-saas' "
        f"(fingerprint {load_contract(REVIEWED_SAAS).fingerprint})"
    )


def test_check_lists_every_problem_with_file_line_and_column(
    saas_csv: Path, tmp_path: Path
) -> None:
    lines = saas_csv.read_text().splitlines()
    header = lines[0].split(",")
    for line, column, value in ((3, "seats", "many"), (7, "plan", "platinum"), (9, "seats", "-4")):
        fields = lines[line - 1].split(",")
        fields[header.index(column)] = value
        lines[line - 1] = ",".join(fields)
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n")
    result = run("check", str(broken), "--contract", str(REVIEWED_SAAS))
    assert result.exit_code == 1
    problems = result.stdout.splitlines()
    assert len(problems) == 3, problems
    for line, column in ((3, "seats"), (7, "plan"), (9, "seats")):
        assert any(p.startswith(f"{broken}: line {line}, column '{column}'") for p in problems)
    assert "3 problem(s)" in result.stderr


def test_check_names_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "few.csv"
    path.write_text("account_id,plan,churned\nA1,growth,true\n")
    result = run("check", str(path), "--contract", str(REVIEWED_SAAS))
    assert result.exit_code == 1
    assert f"{path}: column 'seats'" in result.stdout


def test_check_rejects_an_invalid_contract_naming_the_key(saas_csv: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(REVIEWED_SAAS.read_text().replace("kind: integer", "kind: whole", 1))
    result = run("check", str(saas_csv), "--contract", str(bad))
    assert result.exit_code == 2
    assert f"{bad}: invalid contract" in result.stderr
    assert "features[3] (seats).kind" in result.stderr and "'whole'" in result.stderr
    missing = run("check", str(saas_csv), "--contract", str(tmp_path / "none.yaml"))
    assert missing.exit_code == 2 and "no such contract file" in missing.stderr


def test_check_uses_churnops_contract_else_the_shipped_default(
    saas_csv: Path, tmp_path: Path
) -> None:
    configured = run("check", str(saas_csv), CHURNOPS_CONTRACT=str(REVIEWED_SAAS))
    assert configured.exit_code == 0, configured.output
    telco = tmp_path / "telco.csv"
    frame = generate_customers(300, seed=4)
    frame.columns = [column.lower() for column in frame.columns]  # header case does not matter
    frame.to_csv(telco, index=False)
    default = run("check", str(telco), CHURNOPS_CONTRACT=None)
    assert default.exit_code == 0, default.output
    assert f"match contract '{telco_contract().dataset}'" in default.stdout
    assert "'customerid' -> 'customerID'" in default.stderr


def test_large_files_are_read_in_chunks_with_progress(
    saas_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(contract_cli, "CHUNK_ROWS", 64)
    monkeypatch.setattr(contract_cli, "PROGRESS_BYTES", 1)
    result = run("infer", str(saas_csv))
    assert result.exit_code == 0, result.output
    assert "read 600 rows" in result.stderr
    checked = run("check", str(saas_csv), "--contract", str(REVIEWED_SAAS))
    assert checked.exit_code == 0, checked.output


def test_a_drafted_contract_accepts_the_file_it_came_from(tmp_path: Path) -> None:
    """Ranges are rounded outwards: 1234564.7 must not become a maximum of 1234560."""
    data = tmp_path / "balances.csv"
    data.write_text("balance,rate,churn\n1234564.7,-0.00123456789,yes\n10.25,0.5,no\n3.5,0.25,no\n")
    out = tmp_path / "contract.yaml"
    assert run("infer", str(data), "--out", str(out)).exit_code == 0
    checked = run("check", str(data), "--contract", str(out))
    assert checked.exit_code == 0, checked.output
    assert "3 rows match contract 'balances'" in checked.stdout


def test_a_parquet_file_without_rows_is_reported_not_a_crash(
    saas_csv: Path, tmp_path: Path
) -> None:
    path = tmp_path / "empty.parquet"
    read_customer_file(saas_csv).head(0).to_parquet(path)
    inferred = run("infer", str(path))
    assert inferred.exit_code == 1
    assert f"{path}: the file has a header but no data rows" in inferred.stderr
    checked = run("check", str(path), "--contract", str(REVIEWED_SAAS))
    assert checked.exit_code == 1, checked.output
    assert checked.stdout.strip() == f"{path}: no data rows"


def test_parquet_is_read_in_chunks_with_progress(
    saas_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "saas.parquet"
    read_customer_file(saas_csv).to_parquet(path)
    monkeypatch.setattr(contract_cli, "CHUNK_ROWS", 100)
    monkeypatch.setattr(contract_cli, "PROGRESS_BYTES", 1)
    result = run("check", str(path), "--contract", str(REVIEWED_SAAS))
    assert result.exit_code == 0, result.output
    assert "600 rows match" in result.stdout and "read 600 rows" in result.stderr


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_chunks_add_up_to_the_whole_file_and_report_progress(
    saas_csv: Path, tmp_path: Path, suffix: str
) -> None:
    whole = read_customer_file(saas_csv)
    path = saas_csv if suffix == ".csv" else tmp_path / "saas.parquet"
    if suffix == ".parquet":
        whole.to_parquet(path, index=False)
    progress: list[int] = []
    chunks = list(read_customer_chunks(path, 250, progress.append))
    assert [len(chunk) for chunk in chunks] == [250, 250, 100]
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    assert progress == sorted(progress) and progress[-1] == path.stat().st_size


def test_chunked_reading_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes("name,churn\nJosé,Yes\n".encode("latin-1"))
    with pytest.raises(
        ContractError, match=rf"{re.escape(str(path))}: not UTF-8 text .*save it as UTF-8"
    ):
        list(read_customer_chunks(path, 10))
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n")
    with pytest.raises(ContractError, match=rf"{re.escape(str(blank))}: no header row"):
        list(read_customer_chunks(blank, 10))
    with pytest.raises(ContractError, match=rf"{re.escape(str(tmp_path))}: not a file"):
        list(read_customer_chunks(tmp_path, 10))


def test_check_names_a_bad_setting_instead_of_a_traceback(
    saas_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHURNOPS_BENTO_PORT", "not-a-port")
    result = run("check", str(saas_csv))
    assert result.exit_code == 2
    assert "invalid CHURNOPS_* setting" in result.stderr and "bento_port" in result.stderr
