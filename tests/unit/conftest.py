"""Fixtures shared by the unit test folders."""

from __future__ import annotations

import pytest

from churnops.model import recipes
from churnops.model.recipes import Recipe
from tests.unit.throwaway_recipe import PRIOR


@pytest.fixture
def with_prior(monkeypatch: pytest.MonkeyPatch) -> Recipe:
    """The throwaway recipe registered for one test: the one entry a new recipe adds."""
    monkeypatch.setitem(recipes.RECIPES, PRIOR.name, PRIOR)
    return PRIOR
