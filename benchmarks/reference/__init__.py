"""Reference servers the serving benchmark measures ours against, in the same run."""

# What both reference servers answer to every record: the shape of our answer, no model.
ANSWER = {"request_id": "constant", "churn_probability": 0.5, "churn": "No", "model_version": "0"}
