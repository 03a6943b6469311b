"""Campaign economics: the decision threshold that pays, not the one that looks symmetric.

A retention campaign contacts the customers whose churn probability is at or above the threshold.
Following Verbraken, Verbeke and Baesens (2013), "A Novel Profit Maximizing Metric for Measuring
Classification Performance of Customer Churn Prediction Models", IEEE TKDE 25(5):961-973,
contacting a would-be churner is expected to earn `gamma * (CLV - d) - f` (the offer retains a
share `gamma` of them, each accepting the incentive `d`) and contacting a non-churner costs
`d + f` (they always accept the incentive). The profit-maximising threshold gives the paper's
maximum profit (MP); integrating MP over a Beta-distributed `gamma` gives its expected maximum
profit (EMP). Both are per customer of the whole scored base.

Conventions: a profit curve has one point per distinct score plus "contact nobody", sorted by
threshold descending (so by share contacted ascending). Thresholds are midpoints between
consecutive distinct scores, so ties never split and `probability >= threshold` contacts exactly
the rows of that point; the extremes use the bounds of a probability: 1.0 contacts nobody (a
customer scored exactly 1.0 would still meet it) and 0.0 contacts everybody.

Serving imports this module: numpy and pydantic only (no scipy, no plotting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from churnops.contract import DECISION_THRESHOLD

CONTACT_NOBODY = 1.0  # the threshold of the "contact nobody" point
CONTACT_EVERYBODY = 0.0  # the threshold of the "contact everybody" point
_GAMMA_CHUNK = 32  # success rates scored at once by EMP (bounds memory to 32 x curve points)


class Campaign(BaseModel):
    """What one retention contact costs and earns (the paper's f, CLV, gamma and d)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    contact_cost: float = Field(ge=0, description="f: cost of contacting one customer.")
    retained_value: float = Field(gt=0, description="CLV: value of keeping a would-be churner.")
    success_rate: float = Field(
        gt=0, le=1, description="gamma: share of contacted would-be churners the offer retains."
    )
    offer_cost: float = Field(
        0.0, ge=0, description="d: incentive cost per customer who accepts the offer."
    )

    @property
    def churner_profit(self) -> float:
        """Expected profit of contacting a would-be churner."""
        return self.success_rate * (self.retained_value - self.offer_cost) - self.contact_cost

    @property
    def non_churner_profit(self) -> float:
        """Profit of contacting a customer who would have stayed (a pure cost)."""
        return -(self.offer_cost + self.contact_cost)

    def describe(self) -> str:
        return (
            f"contact {self.contact_cost:g}, retained value {self.retained_value:g}, "
            f"success {100 * self.success_rate:g}%, offer {self.offer_cost:g}"
        )


_REQUIRED = ("contact_cost", "retained_value", "success_rate")


def build_campaign(
    *,
    contact_cost: float | None = None,
    retained_value: float | None = None,
    success_rate: float | None = None,
    offer_cost: float | None = None,
) -> Campaign | None:
    """The campaign the optional `campaign_*` settings describe; None when none is set, so the
    default threshold applies. A partial set is an error rather than a silent default: a
    forgotten number would move the threshold customers are contacted at."""
    given = {
        "contact_cost": contact_cost,
        "retained_value": retained_value,
        "success_rate": success_rate,
    }
    if offer_cost is None and all(value is None for value in given.values()):
        return None
    missing = [f"campaign_{name}" for name in _REQUIRED if given[name] is None]
    if missing:
        raise ValueError(
            f"campaign economics are partly set: {', '.join(missing)} missing "
            "(set campaign_contact_cost, campaign_retained_value and campaign_success_rate, "
            "or none of the campaign settings)"
        )
    return Campaign(**given, offer_cost=0.0 if offer_cost is None else offer_cost)


@dataclass(frozen=True)
class ProfitCurve:
    """Expected profit per customer of every distinct threshold, by threshold descending: index
    0 contacts nobody (threshold 1.0), the last contacts everybody (threshold 0.0).
    `lowest_targeted_score` is the lowest score each point contacts (NaN for nobody): it places
    any other rule, such as the default 0.5, on the curve (`point_at`)."""

    thresholds: np.ndarray
    profit_per_customer: np.ndarray
    targeted_share: np.ndarray
    lowest_targeted_score: np.ndarray

    def index_at(self, threshold: float) -> int:
        """The point whose contacts are exactly the rows with score >= `threshold`."""
        # Scores fall with the index; NaN (nobody) at 0 never counts as >= threshold.
        met = np.flatnonzero(self.lowest_targeted_score >= threshold)
        return int(met[-1]) if met.size else 0

    def point_at(self, threshold: float) -> tuple[float, float]:
        """(targeted share, expected profit per customer) of the rule score >= `threshold`."""
        index = self.index_at(threshold)
        return float(self.targeted_share[index]), float(self.profit_per_customer[index])


@dataclass(frozen=True)
class _Counts:
    """Per curve point: threshold, lowest score contacted, churners and customers contacted."""

    thresholds: np.ndarray
    lowest_score: np.ndarray
    churners: np.ndarray
    contacted: np.ndarray
    rows: int


def _validated(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.size == 0:
        raise ValueError("profit needs at least one scored customer")
    if y.size != s.size:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (stays) or 1 (churns)")
    if not (np.isfinite(s).all() and (s >= 0).all() and (s <= 1).all()):
        raise ValueError("scores must be churn probabilities in [0, 1]")
    return y.astype(np.int64), s


def _counts(y_true: np.ndarray, scores: np.ndarray) -> _Counts:
    """Cumulative churners and contacts per distinct score, highest score first: one sort."""
    y, s = _validated(y_true, scores)
    order = np.argsort(-s, kind="stable")
    ranked, labels = s[order], y[order]
    # The last row of each run of equal scores closes a point: ties are contacted together.
    ends = np.append(np.flatnonzero(np.diff(ranked) != 0), ranked.size - 1)
    lowest = ranked[ends]
    below = np.append(lowest[1:], np.nan)  # the next distinct score down, none after the last
    middle = (lowest + below) / 2
    # Adjacent floats can round the midpoint onto the lower score, which would contact it too.
    cut = np.where(middle > below, middle, lowest)
    cut[-1] = CONTACT_EVERYBODY
    return _Counts(
        thresholds=np.clip(np.append(CONTACT_NOBODY, cut), 0.0, 1.0),
        lowest_score=np.append(np.nan, lowest),
        churners=np.append(0, np.cumsum(labels)[ends]),
        contacted=np.append(0, ends + 1),
        rows=int(s.size),
    )


def _profit(counts: _Counts, campaign: Campaign) -> np.ndarray:
    non_churners = counts.contacted - counts.churners
    total = counts.churners * campaign.churner_profit + non_churners * campaign.non_churner_profit
    return total / counts.rows + 0.0  # + 0.0 turns the -0.0 of contacting nobody into 0.0


def profit_curve(y_true: np.ndarray, scores: np.ndarray, campaign: Campaign) -> ProfitCurve:
    """Expected profit per customer at every distinct threshold (see the module conventions)."""
    counts = _counts(y_true, scores)
    return ProfitCurve(
        thresholds=counts.thresholds,
        profit_per_customer=_profit(counts, campaign),
        targeted_share=counts.contacted / counts.rows,
        lowest_targeted_score=counts.lowest_score,
    )


@dataclass(frozen=True)
class Decision:
    """The served threshold (contact when probability >= threshold) and why. Without campaign
    economics the profit and share are unknown (None)."""

    threshold: float
    basis: str
    expected_profit_per_customer: float | None
    targeted_share: float | None

    def facts(self) -> dict[str, object]:
        """JSON-ready summary (MLflow tags and params, GET /model)."""
        return {
            "threshold": self.threshold,
            "basis": self.basis,
            "expected_profit_per_customer": self.expected_profit_per_customer,
            "targeted_share": self.targeted_share,
        }


def profit_decision(y_true: np.ndarray, scores: np.ndarray, campaign: Campaign | None) -> Decision:
    """The threshold of maximum expected profit (the paper's MP). Among equally profitable
    thresholds the one contacting fewest customers wins, so a campaign that at best breaks even
    contacts nobody (threshold 1.0)."""
    if campaign is None:
        return Decision(
            threshold=DECISION_THRESHOLD,
            basis=f"{DECISION_THRESHOLD:g}: no campaign economics set",
            expected_profit_per_customer=None,
            targeted_share=None,
        )
    curve = profit_curve(y_true, scores, campaign)
    best = int(np.argmax(curve.profit_per_customer))  # first maximum: highest threshold
    threshold = float(curve.thresholds[best])
    profit = float(curve.profit_per_customer[best])
    share = float(curve.targeted_share[best])
    if best == 0:
        runner_up = 1 + int(np.argmax(curve.profit_per_customer[1:]))
        loss = -float(curve.profit_per_customer[runner_up])
        basis = (
            f"no threshold pays under campaign ({campaign.describe()}): contact nobody "
            f"(threshold {threshold:.1f}), expected profit {profit:.4g} per customer, "
            f"top {share:.1%} contacted; the best threshold that contacts anyone, "
            f"{curve.thresholds[runner_up]:.4f}, would lose {loss:.4g} per customer"
        )
    else:
        basis = (
            f"maximum expected profit under campaign ({campaign.describe()}): contact when "
            f"churn probability >= {threshold:.4f}, the top {share:.1%} of customers, "
            f"expected profit {profit:.4g} per customer"
        )
    return Decision(
        threshold=threshold,
        basis=basis,
        expected_profit_per_customer=profit,
        targeted_share=share,
    )


def _beta_pdf(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    log_norm = math.lgamma(alpha + beta) - math.lgamma(alpha) - math.lgamma(beta)
    return np.exp(log_norm + (alpha - 1) * np.log(x) + (beta - 1) * np.log1p(-x))


def expected_maximum_profit(
    y_true: np.ndarray,
    scores: np.ndarray,
    campaign: Campaign,
    alpha: float = 6.0,
    beta: float = 14.0,
    points: int = 200,
) -> float:
    """EMP per customer: the maximum profit averaged over an uncertain success rate,
    gamma ~ Beta(alpha, beta) (the paper's defaults 6 and 14), in place of
    `campaign.success_rate`. Midpoint rule on `points` rates, which never evaluates the density
    at 0 or 1 (infinite for alpha or beta below 1); the weights are normalised to sum to one,
    so a density narrower than the grid still averages, rather than loses, its mass."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"Beta parameters must be positive, got alpha={alpha}, beta={beta}")
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    counts = _counts(y_true, scores)
    gammas = (np.arange(points) + 0.5) / points
    weights = _beta_pdf(gammas, alpha, beta)
    if not np.isfinite(weights).all() or weights.sum() <= 0:
        raise ValueError(f"Beta({alpha}, {beta}) cannot be integrated on {points} points")
    weights = weights / weights.sum()
    # Profit is linear in gamma at each point: intercept + gamma * slope.
    retained = counts.churners * (campaign.retained_value - campaign.offer_cost) / counts.rows
    intercept = (
        -campaign.contact_cost * counts.contacted
        - campaign.offer_cost * (counts.contacted - counts.churners)
    ) / counts.rows
    best = np.empty(points)
    for start in range(0, points, _GAMMA_CHUNK):
        chunk = gammas[start : start + _GAMMA_CHUNK, None]
        best[start : start + _GAMMA_CHUNK] = (intercept + chunk * retained).max(axis=1)
    return float(weights @ best)
