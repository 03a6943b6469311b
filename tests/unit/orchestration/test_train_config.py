"""The training run config is generated from the recipe registry: a new recipe's hyperparameters
appear in the launchpad, and a run's section reaches that recipe, with no edit in orchestration."""

# No `from __future__ import annotations`: Dagster reads each asset's config class from its
# annotation, and these assets are built inside tests around a generated class.

import dagster as dg
import pytest
from pydantic import ValidationError

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from churnops.model.recipes import AUTO, HistGradientBoostingParams
from churnops.model.selection import select_recipe
from orchestration.config import train_config
from orchestration.definitions import defs
from tests.unit.throwaway_recipe import PRIOR

pytestmark = pytest.mark.unit

TELCO = telco_contract()


def training_asset(recipe: str) -> dg.AssetsDefinition:
    """An asset that trains `recipe` from the registry's generated run config, as
    `churn_candidate` does, and returns what the run would log."""
    config_class = train_config(recipes.RECIPES)
    customers = clean_customers(generate_customers(500, seed=2), "synthetic", TELCO).frame

    @dg.asset
    def trained(config: config_class) -> dict:
        params = config.params_for(recipe)
        model = recipes.train(customers, recipe, params, seed=1, contract=TELCO)
        assert model.named_steps["model"].random_state == 1
        return recipes.run_params(params, seed=1)

    return trained


def train_with(recipe: str, run_config: dict) -> dict:
    result = dg.materialize(
        [training_asset(recipe)], run_config={"ops": {"trained": {"config": run_config}}}
    )
    return result.output_for_node("trained")


def launchpad_sections(definitions: dg.Definitions, job: str, op: str) -> dict[str, dg.Field]:
    """The run config sections Dagster's launchpad shows for `op`'s config in `job`."""
    ops = definitions.resolve_job_def(job).run_config_schema.config_type.fields["ops"]
    return ops.config_type.fields[op].config_type.fields["config"].config_type.fields


def assert_each_section_is_optional_with_its_recipes_defaults(sections: dict) -> None:
    assert set(sections) == set(recipes.RECIPES)
    for name, field in sections.items():
        assert not field.is_required, name
        inner = field.config_type.inner_type  # an optional section is Noneable in the schema
        defaults = {key: value.default_value for key, value in inner.fields.items()}
        assert defaults == recipes.lookup(name).parse().model_dump(), name


def test_a_new_recipe_is_set_from_run_config_and_logs_only_its_params(with_prior) -> None:
    assert train_with("always_prior", {}) == {"strategy": "prior", "seed": 1}
    chosen = {"always_prior": {"strategy": "stratified"}}
    assert train_with("always_prior", chosen) == {"strategy": "stratified", "seed": 1}


def test_a_run_reads_only_its_recipes_section() -> None:
    other = {"logistic_regression": {"c": 0.01}, "hist_gradient_boosting": {"max_iter": 9}}
    logged = train_with("hist_gradient_boosting", other)
    assert logged == {**HistGradientBoostingParams(max_iter=9).model_dump(), "seed": 1}


def test_run_config_is_checked_against_the_recipes_params() -> None:
    with pytest.raises(dg.DagsterInvalidConfigError, match="max_iters"):
        train_with("hist_gradient_boosting", {"hist_gradient_boosting": {"max_iters": 9}})
    with pytest.raises(ValidationError, match="greater than 0"):
        train_with("hist_gradient_boosting", {"hist_gradient_boosting": {"learning_rate": 0}})


def test_the_launchpad_offers_a_new_recipe_with_its_defaults(with_prior) -> None:
    definitions = dg.Definitions(
        assets=[training_asset("always_prior")], jobs=[dg.define_asset_job("train")]
    )
    sections = launchpad_sections(definitions, "train", "trained")
    assert "always_prior" in sections
    assert_each_section_is_optional_with_its_recipes_defaults(sections)


def test_the_train_job_offers_a_section_per_recipe_with_its_defaults() -> None:
    sections = launchpad_sections(defs, "train_and_promote", "churn_candidate")
    assert_each_section_is_optional_with_its_recipes_defaults(sections)


def test_auto_cross_validates_every_recipe_with_its_own_section(monkeypatch) -> None:
    registry = {PRIOR.name: PRIOR, "logistic_regression": recipes.lookup("logistic_regression")}
    monkeypatch.setattr(recipes, "RECIPES", registry)
    config_class = train_config(recipes.RECIPES)
    customers = clean_customers(generate_customers(500, seed=2), "synthetic", TELCO).frame

    @dg.asset
    def selected(config: config_class) -> dict:
        selection = select_recipe(
            customers,
            recipes.candidates(AUTO),
            folds=2,
            seed=0,
            contract=TELCO,
            params_for=config.params_for,
        )
        return {result.recipe: result.params.model_dump() for result in selection.results}

    run_config = {"ops": {"selected": {"config": {"logistic_regression": {"c": 0.25}}}}}
    result = dg.materialize([selected], run_config=run_config)
    assert result.output_for_node("selected") == {
        "always_prior": {"strategy": "prior"},
        "logistic_regression": {"c": 0.25},
    }
