"""The Telco customer-churn data contract: the one definition every service imports.

It drives raw-data validation (asset checks), the MLflow model signature and the serving
request schema, so training and serving can never disagree about a field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ID_COLUMN = "customerID"
# Longest customer id accepted anywhere (files and the API): ids are keys, not free text.
MAX_ID_LENGTH = 64
TARGET_COLUMN = "Churn"
TARGET_POSITIVE = "Yes"
TARGET_VALUES = ("No", "Yes")
# Probability at or above which a customer is labelled a churner (served `churn` field, F1).
DECISION_THRESHOLD = 0.5

YES_NO = ("No", "Yes")
INTERNET_ADDON = ("No", "Yes", "No internet service")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input column: its kind, allowed values or range, and an example value."""

    name: str
    kind: Literal["categorical", "integer", "float"]
    description: str
    example: str | int | float
    categories: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False


FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("gender", "categorical", "Customer gender.", "Female", ("Female", "Male")),
    FeatureSpec("SeniorCitizen", "integer", "1 if the customer is 65 or older.", 0, (), 0, 1),
    FeatureSpec("Partner", "categorical", "Has a partner.", "Yes", YES_NO),
    FeatureSpec("Dependents", "categorical", "Has dependents.", "No", YES_NO),
    FeatureSpec("tenure", "integer", "Months with the company.", 1, (), 0, 120),
    FeatureSpec("PhoneService", "categorical", "Has phone service.", "No", YES_NO),
    FeatureSpec(
        "MultipleLines",
        "categorical",
        "Has multiple phone lines.",
        "No phone service",
        ("No", "Yes", "No phone service"),
    ),
    FeatureSpec(
        "InternetService",
        "categorical",
        "Internet service type.",
        "DSL",
        ("DSL", "Fiber optic", "No"),
    ),
    FeatureSpec("OnlineSecurity", "categorical", "Online security add-on.", "No", INTERNET_ADDON),
    FeatureSpec("OnlineBackup", "categorical", "Online backup add-on.", "Yes", INTERNET_ADDON),
    FeatureSpec(
        "DeviceProtection", "categorical", "Device protection add-on.", "No", INTERNET_ADDON
    ),
    FeatureSpec("TechSupport", "categorical", "Tech support add-on.", "No", INTERNET_ADDON),
    FeatureSpec("StreamingTV", "categorical", "Streaming TV add-on.", "No", INTERNET_ADDON),
    FeatureSpec("StreamingMovies", "categorical", "Streaming movies add-on.", "No", INTERNET_ADDON),
    FeatureSpec(
        "Contract",
        "categorical",
        "Contract term.",
        "Month-to-month",
        ("Month-to-month", "One year", "Two year"),
    ),
    FeatureSpec("PaperlessBilling", "categorical", "Paperless billing.", "Yes", YES_NO),
    FeatureSpec(
        "PaymentMethod",
        "categorical",
        "Payment method.",
        "Electronic check",
        (
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        ),
    ),
    FeatureSpec("MonthlyCharges", "float", "Current monthly charge.", 29.85, (), 0.0, 1000.0),
    FeatureSpec(
        "TotalCharges",
        "float",
        "Total charged so far; blank for brand-new customers.",
        29.85,
        (),
        0.0,
        200000.0,
        nullable=True,
    ),
)

FEATURES_BY_NAME = {spec.name: spec for spec in FEATURES}
FEATURE_NAMES: tuple[str, ...] = tuple(spec.name for spec in FEATURES)
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(
    spec.name for spec in FEATURES if spec.kind == "categorical"
)
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    spec.name for spec in FEATURES if spec.kind != "categorical"
)
RAW_COLUMNS: tuple[str, ...] = (ID_COLUMN, *FEATURE_NAMES, TARGET_COLUMN)


def example_record() -> dict[str, str | int | float]:
    """A valid customer record, used for OpenAPI examples and the MLflow input example."""
    return {ID_COLUMN: "7590-VHVEG", **{spec.name: spec.example for spec in FEATURES}}


class ContractError(ValueError):
    """Raw data that breaks the contract; the message names the file, row and column."""
