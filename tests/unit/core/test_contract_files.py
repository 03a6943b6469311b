"""Contract files: YAML and TOML load, every mistake names its key, and the fingerprint tracks
what a model depends on (not the prose)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churnops.contract import (
    ContractFileError,
    dump_contract,
    load_contract,
    parse_contract,
    telco_contract,
)

pytestmark = pytest.mark.unit

MINIMAL = {
    "dataset": "shop",
    "target": {"name": "left", "positive": [1], "negative": [0]},
    "features": [
        {"name": "visits", "kind": "integer", "minimum": 0},
        {"name": "plan", "kind": "categorical", "categories": ["basic", "plus"]},
    ],
}

TOML = """
dataset = "shop"

[target]
name = "left"
positive = [1]
negative = [0]

[[features]]
name = "visits"
kind = "integer"
minimum = 0

[[features]]
name = "plan"
kind = "categorical"
categories = ["basic", "plus"]
"""


def _with(**changes: object) -> dict:
    return {**MINIMAL, **changes}


def _error(raw: object) -> str:
    with pytest.raises(ContractFileError) as info:
        parse_contract(raw, "shop.yaml")
    return str(info.value)


def test_yaml_and_toml_files_load_to_the_same_contract(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(MINIMAL))
    (tmp_path / "shop.toml").write_text(TOML)
    from_yaml = load_contract(tmp_path / "shop.yaml")
    from_toml = load_contract(tmp_path / "shop.toml")
    assert from_yaml == from_toml
    assert from_yaml.feature_names == ("visits", "plan")
    assert from_yaml.id_column is None and from_yaml.id_name == "row_id"
    assert from_yaml.columns == ("row_id", "visits", "plan", "left")


def test_the_shipped_contract_round_trips_through_its_dump(tmp_path: Path) -> None:
    telco = telco_contract()
    path = tmp_path / "telco.yaml"
    path.write_text(dump_contract(telco, header="the default"))
    assert load_contract(path) == telco
    assert path.read_text().startswith("# the default\n")


def test_an_unknown_kind_names_the_feature_and_the_key() -> None:
    features = [{"name": "visits", "kind": "float"}, MINIMAL["features"][1]]
    message = _error(_with(features=features))
    assert "shop.yaml: invalid contract" in message
    assert "features[0] (visits).kind" in message and "'float'" in message


def test_a_missing_target_and_an_unknown_key_are_both_reported() -> None:
    raw = {key: value for key, value in MINIMAL.items() if key != "target"}
    message = _error({**raw, "idcolumn": "id"})
    assert "target: Field required" in message
    assert "idcolumn: unknown key" in message


def test_a_misspelt_feature_key_and_a_bad_range_name_the_feature() -> None:
    features = [{"name": "visits", "kind": "integer", "minimun": 0}, MINIMAL["features"][1]]
    assert "features[0] (visits).minimun: unknown key" in _error(_with(features=features))
    features = [{"name": "visits", "kind": "integer", "minimum": 5, "maximum": 1}]
    assert "visits: minimum 5.0 > maximum 1.0" in _error(_with(features=features))


def test_unreadable_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ContractFileError, match="no such contract file"):
        load_contract(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.toml"
    broken.write_text("dataset = [unclosed")
    with pytest.raises(ContractFileError, match=r"broken\.toml: not valid TOML"):
        load_contract(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    with pytest.raises(ContractFileError, match=r"list\.yaml: expected a mapping"):
        load_contract(listed)


def test_a_feature_that_is_not_a_mapping_names_its_key() -> None:
    message = _error(_with(features=["visits", MINIMAL["features"][1]]))
    assert "features[0]: Input should be a valid dictionary" in message
    assert "at least 1 item" not in message  # no follow-on error for the list itself


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        ({"kind": "boolean", "example": "maybe"}, "example 'maybe' is not a boolean"),
        ({"kind": "integer", "example": 1.5}, "example 1.5 is not a whole number"),
        ({"kind": "integer", "example": True}, "example True is not a number"),
        ({"kind": "numeric", "example": "lots"}, "example 'lots' is not a number"),
        ({"kind": "numeric", "maximum": 10, "example": 12.5}, "is above the maximum 10.0"),
        ({"kind": "integer", "minimum": 0, "example": -1}, "is below the minimum 0.0"),
        ({"kind": "categorical", "categories": ["a", "b"], "example": "c"}, "not one of"),
        ({"kind": "categorical", "example": 7}, "example 7 is not text"),
    ],
)
def test_an_example_that_does_not_fit_its_feature_names_it(
    tmp_path: Path, feature: dict, expected: str
) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(yaml.safe_dump(_with(features=[{"name": "extra", **feature}])))
    with pytest.raises(ContractFileError) as info:
        load_contract(path)
    assert f"{path}: invalid contract" in str(info.value)
    assert "features[0] (extra)" in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize(
    "feature",
    [
        {"kind": "boolean", "example": "Yes"},
        {"kind": "boolean", "example": False},
        {"kind": "integer", "minimum": 0, "maximum": 5, "example": 5.0},
        {"kind": "numeric", "example": 3},
        {"kind": "categorical", "categories": ["a"], "open_categories": True, "example": "z"},
        {"kind": "categorical", "example": "anything"},
    ],
)
def test_an_example_of_the_right_kind_is_accepted(feature: dict) -> None:
    contract = parse_contract(_with(features=[{"name": "extra", **feature}]), "shop.yaml")
    assert contract.by_name["extra"].example == feature["example"]


def test_an_unknown_kind_in_a_file_names_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(TOML.replace('kind = "integer"', 'kind = "whole"'))
    with pytest.raises(ContractFileError) as info:
        load_contract(path)
    assert "features[0] (visits).kind" in str(info.value) and "'whole'" in str(info.value)


def test_the_fingerprint_ignores_prose_but_not_categories_kinds_or_labels() -> None:
    base = parse_contract(MINIMAL, "a")
    described = [
        {**MINIMAL["features"][0], "description": "Visits last month.", "example": 3},
        {**MINIMAL["features"][1], "aliases": ["Plan Name"]},
    ]
    prose = parse_contract(_with(features=described, description="A shop."), "b")
    assert prose.fingerprint == base.fingerprint
    more_categories = [MINIMAL["features"][0], {**MINIMAL["features"][1], "categories": ["a"]}]
    assert parse_contract(_with(features=more_categories), "c").fingerprint != base.fingerprint
    as_number = [{**MINIMAL["features"][0], "kind": "numeric"}, MINIMAL["features"][1]]
    assert parse_contract(_with(features=as_number), "d").fingerprint != base.fingerprint
    flipped = {"name": "left", "positive": [0], "negative": [1]}
    assert parse_contract(_with(target=flipped), "e").fingerprint != base.fingerprint
    assert len(base.fingerprint) == 16


def test_validation_only_settings_leave_the_fingerprint_alone() -> None:
    """Widening a range (or allowing blanks) after training must not make serving refuse the
    champion; changing what the model sees must."""
    base = parse_contract(MINIMAL, "a")
    visits, plan = MINIMAL["features"]
    widened = [{**visits, "minimum": -10, "maximum": 10_000, "nullable": True}, plan]
    relaxed = parse_contract(_with(features=widened, missing_values=["NA"]), "b")
    assert relaxed.fingerprint == base.fingerprint
    for changed in (
        {**plan, "categories": ["basic", "plus", "pro"]},
        {**plan, "open_categories": True},
        {"name": "plan", "kind": "categorical"},
        {**plan, "name": "tier"},
    ):
        other = parse_contract(_with(features=[visits, changed]), "c")
        assert other.fingerprint != base.fingerprint, changed
