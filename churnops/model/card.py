"""The model card of a version: what it was trained on, how it was chosen, why it was (not)
promoted, and what it is for. Built from plain facts the training graph already has, rendered
as Markdown (and HTML) so it can be logged next to the model and read without any tool.

Every part but the data, the recipe and the holdout metrics is optional: a part that was not
computed (no tuning, no champion to compare with, ...) says so instead of breaking the card.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from churnops.contract import Contract

NOT_COMPUTED = "not computed"

INTENDED_USE = (
    "Churn propensity of the contract's customer population, to rank customers for retention "
    "targeting (who to contact, in what order). It is not meant for, and must not be used in, "
    "credit, pricing or eligibility decisions about an individual."
)

UNCALIBRATED = ("none", "raw", "")  # method names meaning the raw model probabilities
DRIFT_MONITORED = (
    "Drift monitoring is in place: the served traffic is compared with this version's holdout "
    "reference, and live AUC from feedback labels is tracked per version."
)


@dataclass(frozen=True)
class DataFacts:
    """The training data as the split recorded it (see `churnops.data.split.Split.summary`)."""

    train_fingerprint: str
    holdout_fingerprint: str
    train_rows: int
    holdout_rows: int
    train_churn_rate: float
    holdout_churn_rate: float
    source: str | None = None  # e.g. a file path, or "synthetic (50,000 rows, seed 42)"

    @classmethod
    def from_split_summary(
        cls, summary: Mapping[str, float | int | str], source: str | None = None
    ) -> DataFacts:
        """From the dict `Split.summary()` returns (and a training run logs as params)."""
        return cls(
            train_fingerprint=str(summary["train_fingerprint"]),
            holdout_fingerprint=str(summary["holdout_fingerprint"]),
            train_rows=int(summary["train_rows"]),
            holdout_rows=int(summary["holdout_rows"]),
            train_churn_rate=float(summary["train_churn_rate"]),
            holdout_churn_rate=float(summary["holdout_churn_rate"]),
            source=source,
        )


@dataclass(frozen=True)
class ContractFacts:
    """The data contract the version was trained on (and the only one serving accepts it under)."""

    dataset: str
    fingerprint: str
    features: int
    target: str

    @classmethod
    def from_contract(cls, contract: Contract) -> ContractFacts:
        return cls(
            dataset=contract.dataset,
            fingerprint=contract.fingerprint,
            features=len(contract.features),
            target=f"{contract.target.name} = {', '.join(map(str, contract.target.positive))}",
        )


@dataclass(frozen=True)
class CalibrationFacts:
    """The method chosen on cross-validation (`none`, `sigmoid` or `isotonic`) and the CV Brier
    score of each option (raw, sigmoid, isotonic)."""

    method: str
    briers: Mapping[str, float] = field(default_factory=dict)

    @property
    def calibrated(self) -> bool:
        return self.method not in UNCALIBRATED


@dataclass(frozen=True)
class GateFacts:
    """The promotion gate's verdict on this version."""

    promoted: bool
    reason: str
    p_value: float | None = None
    auc_diff: float | None = None  # challenger - champion on the same holdout
    ci: tuple[float, float] | None = None  # interval of that difference
    confidence: float | None = None  # e.g. 0.95
    champion_version: str | None = None  # the version it was compared with


@dataclass(frozen=True)
class ModelCard:
    model_name: str
    created_at: datetime | str
    data: DataFacts
    recipe: str
    parameters: Mapping[str, object]
    holdout_metrics: Mapping[str, float]
    version: str | None = None
    cv_table: Sequence[Mapping[str, object]] | None = None
    tuning: str | None = None  # one line, e.g. "Optuna, 25 trials in 30 s, best CV AUC 0.84"
    calibration: CalibrationFacts | None = None
    slice_table: Sequence[Mapping[str, object]] | None = None
    slice_min_rows: int | None = None
    gate: GateFacts | None = None
    contract: ContractFacts | None = None
    intended_use: str = INTENDED_USE


# A card is a list of sections, each a list of blocks; both renderers walk the same structure.


@dataclass(frozen=True)
class Paragraph:
    text: str
    emphasis: bool = False


MISSING = Paragraph(NOT_COMPUTED, emphasis=True)


@dataclass(frozen=True)
class Facts:
    items: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


Block = Paragraph | Facts | Table | Bullets


@dataclass(frozen=True)
class Section:
    title: str
    blocks: Sequence[Block]


def format_value(value: object) -> str:
    """Numbers as a reader wants them: 4 decimals for floats, thousands separators for ints."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1:  # a count logged as a float metric
            return f"{int(value):,}"
        if value != 0 and abs(value) < 1e-4:
            return f"{value:.2e}"
        return f"{value:,.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if value is None:
        return "—"
    return str(value)


def format_rate(rate: float) -> str:
    return f"{rate:.1%}"


def format_p_value(p: float | None) -> str:
    if p is None:
        return NOT_COMPUTED
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def format_interval(interval: tuple[float, float] | None, confidence: float | None) -> str:
    if interval is None:
        return NOT_COMPUTED
    low, high = interval
    level = f"{confidence:.0%} " if confidence is not None else ""
    return f"{level}[{low:+.4f}, {high:+.4f}]"


def _dict_table(rows: Sequence[Mapping[str, object]]) -> Table:
    """Columns in the order they first appear, so rows may differ in their keys."""
    headers: list[str] = []
    for row in rows:
        headers += [key for key in row if key not in headers]
    return Table(headers, [[format_value(row.get(h)) for h in headers] for row in rows])


def _optional_table(rows: Sequence[Mapping[str, object]] | None) -> Block:
    return _dict_table(rows) if rows else MISSING


def _contract_facts(contract: ContractFacts | None) -> list[tuple[str, str]]:
    if contract is None:
        return [("Data contract", NOT_COMPUTED)]
    return [
        ("Data contract", f"`{contract.dataset}` (fingerprint `{contract.fingerprint}`)"),
        ("Features", format_value(contract.features)),
        ("Churn means", contract.target),
    ]


def _data_section(data: DataFacts, contract: ContractFacts | None) -> Section:
    return Section(
        "Data",
        [
            Facts(
                [
                    *_contract_facts(contract),
                    ("Source", data.source or NOT_COMPUTED),
                    ("Training rows", format_value(data.train_rows)),
                    ("Holdout rows", format_value(data.holdout_rows)),
                    ("Training churn rate", format_rate(data.train_churn_rate)),
                    ("Holdout churn rate", format_rate(data.holdout_churn_rate)),
                    ("Training fingerprint", f"`{data.train_fingerprint}`"),
                    ("Holdout fingerprint", f"`{data.holdout_fingerprint}`"),
                ]
            )
        ],
    )


def _recipe_section(card: ModelCard) -> Section:
    parameters: Block = (
        Table(["parameter", "value"], [[k, format_value(v)] for k, v in card.parameters.items()])
        if card.parameters
        else Paragraph("recipe defaults", emphasis=True)
    )
    return Section(
        "Recipe and parameters",
        [
            Facts([("Recipe", f"`{card.recipe}`"), ("Tuning", card.tuning or NOT_COMPUTED)]),
            parameters,
        ],
    )


def _calibration_section(calibration: CalibrationFacts | None) -> Section:
    if calibration is None:
        return Section("Calibration", [MISSING])
    briers = [
        (f"CV Brier ({_probabilities(name)})", format_value(brier))
        for name, brier in calibration.briers.items()
    ]
    chosen = f"`{calibration.method}`" + ("" if calibration.calibrated else " (raw probabilities)")
    return Section("Calibration", [Facts([("Method chosen", chosen), *briers])])


def _probabilities(method: str) -> str:
    return "raw" if method in UNCALIBRATED else method


def _slices_section(card: ModelCard) -> Section:
    blocks: list[Block] = [_optional_table(card.slice_table)]
    if card.slice_table and card.slice_min_rows is not None:
        minimum = card.slice_min_rows
        blocks.append(Paragraph(f"Slices with fewer than {minimum:,} holdout rows are not judged."))
    return Section("Slices (holdout)", blocks)


def _gate_section(gate: GateFacts | None) -> Section:
    if gate is None:
        return Section("Gate decision", [MISSING])
    return Section(
        "Gate decision",
        [
            Facts(
                [
                    ("Decision", "promoted" if gate.promoted else "rejected"),
                    ("Reason", gate.reason),
                    (
                        "Compared with",
                        f"version {gate.champion_version}"
                        if gate.champion_version
                        else "no champion",
                    ),
                    (
                        "AUC difference",
                        NOT_COMPUTED if gate.auc_diff is None else f"{gate.auc_diff:+.4f}",
                    ),
                    ("Interval", format_interval(gate.ci, gate.confidence)),
                    ("p-value (one-sided)", format_p_value(gate.p_value)),
                ]
            )
        ],
    )


def limits_for(card: ModelCard) -> list[str]:
    """The fixed limits, with this card's own figures filled in."""
    source = card.data.source or "the configured data source"
    calibration = card.calibration
    if calibration is not None and calibration.calibrated:
        calibrated = (
            f"Probabilities are calibrated ({calibration.method}, chosen on cross-validation)."
        )
    else:
        calibrated = (
            "Probabilities are the model's raw scores (not calibrated): rank customers by them, "
            "do not read them as churn frequencies."
        )
    minimum = (
        f"{card.slice_min_rows:,} holdout rows"
        if card.slice_min_rows is not None
        else "the configured minimum rows"
    )
    served = (
        [
            f"Served only under data contract `{card.contract.dataset}` (fingerprint "
            f"`{card.contract.fingerprint}`): serving configured with another contract refuses it."
        ]
        if card.contract is not None
        else []
    )
    return [
        f"Trained on {source} only; other populations or time periods are not covered.",
        *served,
        calibrated,
        f"Slices with fewer than {minimum} (or with one class only) are not judged by the gate.",
        DRIFT_MONITORED,
    ]


def sections(card: ModelCard) -> list[Section]:
    created = (
        card.created_at.isoformat(timespec="seconds")
        if isinstance(card.created_at, datetime)
        else card.created_at
    )
    summary = Facts(
        [
            ("Model", f"`{card.model_name}`"),
            ("Version", card.version or "not registered yet"),
            ("Created at", created),
            ("Recipe", f"`{card.recipe}`"),
        ]
    )
    metrics = (
        Table(["metric", "value"], [[k, format_value(v)] for k, v in card.holdout_metrics.items()])
        if card.holdout_metrics
        else MISSING
    )
    return [
        Section("Summary", [summary]),
        _data_section(card.data, card.contract),
        _recipe_section(card),
        Section("Cross-validation (training split)", [_optional_table(card.cv_table)]),
        Section("Holdout metrics", [metrics]),
        _calibration_section(card.calibration),
        _slices_section(card),
        _gate_section(card.gate),
        Section("Intended use", [Paragraph(card.intended_use)]),
        Section("Limits", [Bullets(limits_for(card))]),
    ]


def title(card: ModelCard) -> str:
    version = f" v{card.version}" if card.version else ""
    return f"Model card: {card.model_name}{version}"


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _markdown_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f"_{block.text}_" if block.emphasis else block.text
    if isinstance(block, Facts):
        return "\n".join(f"- **{label}:** {value}" for label, value in block.items)
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in block.headers) + " |",
        "|" + "|".join("---" for _ in block.headers) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines)


def render_model_card(card: ModelCard) -> str:
    """The card as Markdown: a title and one `##` section per part."""
    parts = [f"# {title(card)}"]
    for section in sections(card):
        parts.append(f"## {section.title}")
        parts += [_markdown_block(block) for block in section.blocks]
    return "\n\n".join(parts) + "\n"


def _inline_html(text: str) -> str:
    """Escape, then turn the Markdown code spans the card uses into `<code>` tags."""
    pieces = html.escape(text).split("`")
    for i in range(1, len(pieces), 2):
        pieces[i] = f"<code>{pieces[i]}</code>"
    return "".join(pieces)


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        text = _inline_html(block.text)
        return f"<p><em>{text}</em></p>" if block.emphasis else f"<p>{text}</p>"
    if isinstance(block, Facts):
        items = "".join(
            f"<tr><th>{_inline_html(label)}</th><td>{_inline_html(value)}</td></tr>"
            for label, value in block.items
        )
        return f"<table class='facts'>{items}</table>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in block.items) + "</ul>"
    head = "".join(f"<th>{_inline_html(h)}</th>" for h in block.headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in block.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
)


def render_model_card_html(card: ModelCard) -> str:
    """The same card as a standalone HTML page (MLflow's artifact viewer renders it)."""
    heading = html.escape(title(card))
    body = [f"<h1>{heading}</h1>"]
    for section in sections(card):
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body += [_html_block(block) for block in section.blocks]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )
