"""The model card renders every section, formats its figures, and survives missing parts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from churnops.contract import telco_contract
from churnops.model.card import (
    NOT_COMPUTED,
    CalibrationFacts,
    ContractFacts,
    DataFacts,
    GateFacts,
    ModelCard,
    format_p_value,
    format_value,
    render_model_card,
    render_model_card_html,
)

pytestmark = pytest.mark.unit

SECTIONS = (
    "## Summary",
    "## Data",
    "## Recipe and parameters",
    "## Cross-validation (training split)",
    "## Holdout metrics",
    "## Calibration",
    "## Slices (holdout)",
    "## Gate decision",
    "## Intended use",
    "## Limits",
)

SUMMARY = {
    "train_rows": 40_000,
    "holdout_rows": 10_000,
    "train_churn_rate": 0.2651,
    "holdout_churn_rate": 0.2649,
    "holdout_fraction": 0.2,
    "split_seed": 42,
    "train_fingerprint": "a1b2c3d4e5f60708",
    "holdout_fingerprint": "0807f6e5d4c3b2a1",
}


def _minimal() -> ModelCard:
    return ModelCard(
        model_name="churn",
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        data=DataFacts.from_split_summary(SUMMARY),
        recipe="logistic_regression",
        parameters={"c": 1.0, "seed": 42},
        holdout_metrics={"roc_auc": 0.84123, "brier": 0.1391},
    )


def _full() -> ModelCard:
    return ModelCard(
        model_name="churn",
        version="7",
        created_at="2025-01-02T03:04:05+00:00",
        data=DataFacts.from_split_summary(SUMMARY, source="synthetic (50,000 rows, seed 42)"),
        recipe="hist_gradient_boosting",
        parameters={"learning_rate": 0.05, "max_iter": 300, "seed": 42},
        holdout_metrics={"roc_auc": 0.85, "holdout_rows": 10_000.0},
        cv_table=[
            {"recipe": "hist_gradient_boosting", "roc_auc_mean": 0.8512, "roc_auc_std": 0.0041},
            {"recipe": "logistic_regression", "roc_auc_mean": 0.8433, "roc_auc_std": 0.0052},
        ],
        tuning="Optuna: 12 trials in 30 s, best CV AUC 0.8530",
        calibration=CalibrationFacts(
            "isotonic", {"raw": 0.1412, "sigmoid": 0.1405, "isotonic": 0.1398}
        ),
        slice_table=[
            {"slice": "Contract=Month-to-month", "rows": 5_500, "verdict": "ok"},
            {"slice": "tenure 0-6", "rows": 120, "verdict": "not judged (rows)"},
        ],
        slice_min_rows=200,
        gate=GateFacts(
            promoted=True,
            reason="AUC +0.0123 over champion v6, p=0.001",
            p_value=0.00004,
            auc_diff=0.0123,
            ci=(0.0051, 0.0195),
            confidence=0.95,
            champion_version="6",
        ),
    )


def test_every_section_is_present_in_order() -> None:
    text = render_model_card(_full())
    assert text.startswith("# Model card: churn v7\n")
    positions = [text.index(title) for title in SECTIONS]
    assert positions == sorted(positions)


def test_values_are_formatted_for_a_reader() -> None:
    text = render_model_card(_full())
    assert "- **Training rows:** 40,000" in text
    assert "- **Training churn rate:** 26.5%" in text
    assert "`a1b2c3d4e5f60708`" in text
    assert "| hist_gradient_boosting | 0.8512 | 0.0041 |" in text
    assert "| learning_rate | 0.0500 |" in text
    assert "| holdout_rows | 10,000 |" in text
    assert "- **Method chosen:** `isotonic`" in text
    assert "- **CV Brier (sigmoid):** 0.1405" in text
    assert "| tenure 0-6 | 120 | not judged (rows) |" in text
    assert "Slices with fewer than 200 holdout rows are not judged." in text
    assert "- **Decision:** promoted" in text
    assert "- **Compared with:** version 6" in text
    assert "- **AUC difference:** +0.0123" in text
    assert "- **Interval:** 95% [+0.0051, +0.0195]" in text
    assert "- **p-value (one-sided):** < 0.0001" in text
    assert "Probabilities are calibrated (isotonic" in text
    assert "Trained on synthetic (50,000 rows, seed 42) only" in text


def test_missing_optional_parts_say_not_computed() -> None:
    text = render_model_card(_minimal())
    for title in SECTIONS:
        assert title in text
    assert text.count(f"_{NOT_COMPUTED}_") == 4  # CV, calibration, slices, gate
    assert "- **Version:** not registered yet" in text
    assert "- **Created at:** 2025-01-02T03:04:05+00:00" in text
    assert "- **Tuning:** not computed" in text
    assert "not calibrated" in text
    assert "the configured minimum rows" in text
    assert "retention targeting" in text and "eligibility decisions" in text


def test_an_uncalibrated_model_shows_raw_briers() -> None:
    card = ModelCard(
        **{
            **_minimal().__dict__,
            "calibration": CalibrationFacts("none", {"none": 0.1334, "sigmoid": 0.1335}),
        }
    )
    text = render_model_card(card)
    assert "- **Method chosen:** `none` (raw probabilities)" in text
    assert "- **CV Brier (raw):** 0.1334" in text
    assert "Probabilities are the model's raw scores (not calibrated)" in text


def test_gate_without_a_champion_has_no_interval() -> None:
    card = _minimal()
    rejected = ModelCard(
        **{
            **card.__dict__,
            "gate": GateFacts(promoted=False, reason="challenger AUC 0.61 is below minimum 0.7"),
        }
    )
    text = render_model_card(rejected)
    assert "- **Decision:** rejected" in text
    assert "- **Compared with:** no champion" in text
    assert "- **Interval:** not computed" in text
    assert "- **p-value (one-sided):** not computed" in text


def test_table_cells_cannot_break_the_markdown_table() -> None:
    card = ModelCard(**{**_minimal().__dict__, "cv_table": [{"recipe": "a|b", "note": "x\ny"}]})
    assert "| a\\|b | x y |" in render_model_card(card)


def test_html_has_the_same_sections_and_escapes_text() -> None:
    card = ModelCard(**{**_full().__dict__, "recipe": "<script>"})
    page = render_model_card_html(card)
    assert page.startswith("<!DOCTYPE html>")
    for title in SECTIONS:
        assert f"<h2>{title.removeprefix('## ').replace('&', '&amp;')}</h2>" in page
    assert "<script>" not in page and "<code>&lt;script&gt;</code>" in page
    assert "<td>0.8512</td>" in page
    assert "<em>not computed</em>" in render_model_card_html(_minimal())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "yes"),
        (1234, "1,234"),
        (0.84123, "0.8412"),
        (0.00001, "1.00e-05"),
        (12345.6, "12,346"),
        (800.0, "800"),
        (1.5, "1.5000"),
        (float("nan"), "nan"),
        (None, "—"),
        ("hgb", "hgb"),
    ],
)
def test_format_value(value: object, text: str) -> None:
    assert format_value(value) == text


def test_format_p_value() -> None:
    assert format_p_value(0.04321) == "0.0432"
    assert format_p_value(1e-9) == "< 0.0001"
    assert format_p_value(None) == NOT_COMPUTED


def test_the_card_names_the_data_contract_it_serves_under() -> None:
    telco = telco_contract()
    card = replace(_minimal(), contract=ContractFacts.from_contract(telco))
    text = render_model_card(card)
    assert f"`{telco.dataset}` (fingerprint `{telco.fingerprint}`)" in text
    assert "**Churn means:** Churn = Yes" in text
    assert f"Served only under data contract `{telco.dataset}`" in text
    assert "- **Data contract:** not computed" in render_model_card(_minimal())
