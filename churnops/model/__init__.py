"""Model recipes, scoring, evaluation metrics, importance and the promotion gate."""
