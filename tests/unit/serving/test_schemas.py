"""The feedback model: labels in any spelling the contract accepts, ids as text or numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from churnops.contract import telco_contract
from serving.schemas import LABEL_ATTRIBUTE, api_models
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()


@pytest.mark.parametrize(("sent", "kept"), [("yes", "Yes"), ("YES", "Yes"), (" No ", "No")])
def test_telco_feedback_keeps_the_canonical_label(sent: object, kept: str) -> None:
    feedback = api_models(TELCO).feedback.model_validate({"request_id": "q1", "Churn": sent})
    assert getattr(feedback, LABEL_ATTRIBUTE) == kept == TELCO.target.canonical(sent)


def test_feedback_takes_a_numeric_customer_id_as_its_text() -> None:
    model = api_models(TELCO).feedback
    assert model.model_validate({"customerID": 15634602, "Churn": "No"}).record_id == "15634602"
    with pytest.raises(ValidationError, match="customerID"):
        model.model_validate({"customerID": False, "Churn": "No"})


def test_a_label_outside_the_contract_is_refused_by_name() -> None:
    assert GYM.target.canonical(1.0) == "1" and GYM.target.canonical("maybe") is None
    with pytest.raises(ValidationError, match="is not a label of 'left'"):
        api_models(GYM).feedback.model_validate({"request_id": "q1", "left": "maybe"})
