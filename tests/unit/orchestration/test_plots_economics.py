"""The campaign plots: the profit curve with the chosen and default thresholds marked, and the
score histogram with the threshold line."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from churnops.model.economics import Campaign, profit_curve, profit_decision
from orchestration.plots import profit_figure, score_histogram_figure

pytestmark = pytest.mark.unit

CAMPAIGN = Campaign(contact_cost=10, retained_value=200, success_rate=0.3)
Y = np.array([1, 1, 0, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.8, 0.6, 0.4, 0.1])


def _legend(fig: Figure) -> list[str]:
    legend = fig.axes[0].get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def _png(fig: Figure, path: Path) -> bytes:
    fig.savefig(path)
    plt.close(fig)
    return path.read_bytes()


def test_profit_figure_marks_the_chosen_and_default_thresholds(tmp_path: Path) -> None:
    decision = profit_decision(Y, SCORES, CAMPAIGN)
    fig = profit_figure(profit_curve(Y, SCORES, CAMPAIGN), decision)
    assert isinstance(fig, Figure)
    legend = _legend(fig)
    assert "chosen threshold 0.25: 21.7 per customer" in legend
    assert "threshold 0.5: 13.3 per customer" in legend
    ax = fig.axes[0]
    curve_line = ax.get_lines()[0]
    np.testing.assert_allclose(curve_line.get_xdata(), 100 * np.array([0, 1, 3, 4, 5, 6]) / 6)
    chosen = ax.get_lines()[-1]
    assert chosen.get_xdata()[0] == pytest.approx(100 * 5 / 6)
    assert chosen.get_ydata()[0] == pytest.approx(130 / 6)
    assert _png(fig, tmp_path / "profit.png").startswith(b"\x89PNG")


def test_profit_figure_of_a_losing_campaign_marks_contacting_nobody() -> None:
    campaign = Campaign(contact_cost=100, retained_value=200, success_rate=0.3)
    decision = profit_decision(Y, SCORES, campaign)
    fig = profit_figure(profit_curve(Y, SCORES, campaign), decision)
    assert "chosen threshold 1: 0 per customer" in _legend(fig)
    plt.close(fig)


def test_score_histogram_draws_the_threshold(tmp_path: Path) -> None:
    scores = np.random.default_rng(0).beta(2, 5, 1000)
    counts, _ = np.histogram(scores, bins=20, range=(0, 1))
    fig = score_histogram_figure(counts, 0.25, int((scores >= 0.25).sum()))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.patches) == 20
    assert sum(patch.get_height() for patch in ax.patches) == 1000
    contacted = (scores >= 0.25).mean()
    assert _legend(fig) == [f"threshold 0.25 ({contacted:.1%} contacted)"]
    assert ax.get_lines()[0].get_xdata()[0] == pytest.approx(0.25)
    assert _png(fig, tmp_path / "scores.png").startswith(b"\x89PNG")
