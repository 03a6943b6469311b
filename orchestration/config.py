"""Dagster run config for training, generated from the recipe registry.

`TrainConfig` has one optional section per registered recipe, holding that recipe's
hyperparameters with their defaults, descriptions and bounds, so the launchpad offers every
recipe's knobs and a new recipe needs no edit here. Which recipes run is deployment policy
(`CHURNOPS_RECIPE`: `auto` cross-validates all of them, a name pins one); a run reads the
section of each recipe it cross-validates, and tuning starts from the chosen one's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import dagster as dg
from pydantic import Field, create_model

from churnops.model.recipes import RECIPES, Recipe, RecipeParams, lookup


class RecipeSections(dg.Config):
    """Base of the generated run config: a field per recipe, named as the recipe."""

    def params_for(self, name: str) -> RecipeParams:
        """Recipe `name`'s typed params: its section if the run set one, else its defaults."""
        section = getattr(self, name, None)
        return lookup(name).parse(None if section is None else section.model_dump())


def recipe_section(recipe: Recipe) -> type[dg.Config]:
    """A Dagster Config mirroring the recipe's params model, field for field."""
    fields = {
        name: (field.annotation, copy.copy(field))
        for name, field in recipe.params.model_fields.items()
    }
    return create_model(
        f"{recipe.params.__name__}Config",
        __base__=dg.Config,
        __doc__=recipe.description,
        **fields,
    )


def train_config(recipes: Mapping[str, Recipe]) -> type[RecipeSections]:
    """The run config class for a registry: every recipe's section, each optional."""
    sections = {
        name: (
            recipe_section(recipe) | None,
            Field(
                None,
                description=f"{recipe.description} Used when `{name}` is cross-validated "
                "(CHURNOPS_RECIPE `auto` or pinned to it); tuning starts from it.",
            ),
        )
        for name, recipe in recipes.items()
    }
    return create_model(
        "TrainConfig",
        __base__=RecipeSections,
        __doc__="Per-run hyperparameters of each recipe (which recipes run is deployment policy).",
        **sections,
    )


TrainConfig = train_config(RECIPES)
