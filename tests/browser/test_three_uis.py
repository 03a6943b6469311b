"""A new user's path through the three UIs, clicked in a real browser against `churnops up`.

The stack starts with `--no-train`, so the model the user ends up calling is the one their own
click in the Dagster UI trained, registered and promoted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launcher.credentials import ADMIN
from tests.e2e.stack import LOCATION, RunningStack, start_stack

pytestmark = pytest.mark.browser

RUN_STATUS = """
query Run($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }
"""
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    running = start_stack(
        tmp_path_factory.mktemp("browser-stack"),
        up_args=("--no-train",),
        synthetic_rows="20000",
        alias_poll_seconds="2",
    )
    yield running
    running.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    yield context.new_page()
    context.close()


def _skip_dagster_welcome(page) -> None:
    """Dagster greets a new browser with a newsletter dialog, at any moment; a user clicks Skip."""
    skip = page.get_by_role("button", name="Skip")
    page.add_locator_handler(skip, lambda button: button.click())


def _run_status(stack: RunningStack, run_id: str) -> str:
    return stack.graphql(RUN_STATUS, {"runId": run_id})["runOrError"]["status"]


def test_materialize_all_in_dagster_ui_trains_the_champion(
    stack: RunningStack, page, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    _skip_dagster_welcome(page)
    page.goto(f"{stack.dagster}/locations/{LOCATION}/jobs/train_and_promote")
    page.get_by_role("button", name="Materialize all").click()
    page.get_by_role("link", name="View", exact=True).click()  # the "Launched run" toast
    page.wait_for_url("**/runs/*")
    run_id = page.url.rstrip("/").split("/")[-1]
    expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=300_000)
    assert _run_status(stack, run_id) == "SUCCESS"
    page.screenshot(path=screenshots / "dagster-run.png")

    page.goto(f"{stack.dagster}/assets/candidate_evaluation")
    for text in ("training", "ml-platform", "roc_auc", "train_and_promote", "drift_sensor"):
        expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=30_000)
    page.screenshot(path=screenshots / "dagster-asset.png")


def test_dagster_automation_lists_the_drift_sensor_and_retrain_schedule(
    stack: RunningStack, page
) -> None:
    from playwright.sync_api import expect

    _skip_dagster_welcome(page)
    page.goto(f"{stack.dagster}/automation")
    for name in ("drift_sensor", "weekly_retrain", "champion_scoring_sensor", "weekly_scoring"):
        expect(page.get_by_role("link", name=name).first).to_be_visible(timeout=30_000)


def test_the_promotion_scored_the_base_and_dagster_shows_its_metadata(
    stack: RunningStack, page, screenshots: Path
) -> None:
    """The click above promoted a champion; the scoring sensor scored the customer base with
    it, and the asset page shows the histogram and the ranked list."""
    from playwright.sync_api import expect

    deadline = time.monotonic() + 300
    while not any(run["status"] == "SUCCESS" for run in stack.runs("score_customers")):
        failed = [run for run in stack.runs("score_customers") if run["status"] == "FAILURE"]
        assert not failed and time.monotonic() < deadline, stack.output()[-3000:]
        time.sleep(2)
    _skip_dagster_welcome(page)
    page.goto(f"{stack.dagster}/assets/churn_scores")
    for text in ("scoring", "score_histogram", "top_customers", "model_version", "threshold"):
        expect(page.get_by_text(text, exact=True).first).to_be_visible(timeout=60_000)
    page.screenshot(path=screenshots / "dagster-scores.png")


@pytest.fixture
def mlflow_page(browser, stack: RunningStack):
    """A browser logged in to MLflow's auth app as its admin (the login `churnops up` printed);
    the Basic auth challenge is answered the way a user types it into the browser's prompt."""
    username, password = stack.mlflow_login(ADMIN)
    context = browser.new_context(
        viewport=VIEWPORT, http_credentials={"username": username, "password": password}
    )
    yield context.new_page()
    context.close()


def test_mlflow_ui_asks_for_a_login(stack: RunningStack, page) -> None:
    """Without a login the browser gets MLflow's Basic challenge (headless, nobody answers)."""
    from playwright.sync_api import Error

    with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):
        page.goto(f"{stack.mlflow}/")
    assert httpx.get(f"{stack.mlflow}/").headers["www-authenticate"].startswith("Basic")


def test_mlflow_ui_shows_the_new_version_as_champion(
    stack: RunningStack, mlflow_page, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    page = mlflow_page
    champion = httpx.get(
        f"{stack.mlflow}/api/2.0/mlflow/registered-models/alias",
        params={"name": "churn", "alias": "champion"},
        auth=stack.mlflow_login(),
    ).json()["model_version"]
    page.goto(f"{stack.mlflow}/#/models/churn")
    row = page.get_by_role("row").filter(has_text=f"Version {champion['version']}")
    expect(row).to_contain_text("champion", timeout=30_000)
    expect(row).to_contain_text("gate.decision")
    expect(page.get_by_text("Customer churn classifier").first).to_be_visible()
    close_assistant = page.get_by_role("button", name="Close")
    if close_assistant.count() and close_assistant.first.is_visible():
        close_assistant.first.click()
    page.screenshot(path=screenshots / "mlflow-champion.png")

    page.goto(f"{stack.mlflow}/#/experiments")
    expect(page.get_by_text("churn-training").first).to_be_visible(timeout=30_000)


def _wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, httpx.get(f"{url}/model").text
        time.sleep(1)


def test_bento_docs_page_executes_a_prediction(
    stack: RunningStack, page, screenshots: Path
) -> None:
    from playwright.sync_api import expect

    _wait_ready(stack.bento)
    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto(f"{stack.bento}/docs")
    operation = page.locator("#operations-Service_APIs-churn_prediction__predict")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    body = operation.locator(".live-responses-table .response-col_description pre").first
    expect(body).to_contain_text("churn_probability", timeout=30_000)
    prediction = json.loads(body.inner_text())
    champion = httpx.get(f"{stack.bento}/model").json()["model_version"]
    assert prediction["model_version"] == champion
    assert 0.0 <= prediction["churn_probability"] <= 1.0
    operation.locator(".live-responses-table").scroll_into_view_if_needed()
    page.screenshot(path=screenshots / "bento-docs.png")
