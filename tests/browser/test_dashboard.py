"""The dashboard end to end in headless Chromium: filter the list, read a timeline, act on workflows.

Needs Debian's ``chromium`` and ``chromium-driver`` and selenium (installed by .ci/run and
the ``test`` extra). Skips locally without them; fails under CI=true. A screenshot of
each stage is saved under ``artifacts/`` (gitignored).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pulsarflow.dashboard.embedded import EmbeddedDashboard
from tests.e2e import flows

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def _absent(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _absent("selenium is missing: pip install -e '.[test]'")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        _absent("chromium and chromium-driver are not installed: apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1500,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(driver_path)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # the page may be re-rendering: look again
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def click(driver: Any, css: str) -> None:
    """Click the element ``css`` finds, again if the page redrew it meanwhile (a stale reference)."""
    def once() -> bool:
        driver.find_element("css selector", css).click()
        return True
    wait_for(once, f"a click on {css}")


def rows(driver: Any) -> list[str]:
    return [r.get_attribute("data-id") for r in driver.find_elements("css selector", "#workflows tbody tr")]


def shot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    return path


def test_filter_inspect_and_act(browser: Any, dashboard: EmbeddedDashboard, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    with dashboard.lock:
        client = dashboard.env.client()
        client.start(flows.approval, 3600, id="wait-signal")
        client.start(flows.retrying, "ui", 2, id="retried")
        client.start(flows.resumable, str(flag), id="broken")
        client.start(flows.holds_strictly, "seat", id="to-cancel")
    browser.get(dashboard.login_url)  # the URL printed at start: it carries the token in its fragment
    wait_for(lambda: set(rows(browser)) == {"wait-signal", "retried", "broken", "to-cancel"}, "four workflows")
    assert "#token" not in browser.current_url  # the page keeps it in session storage, off the address bar

    # Filter by status: only the failed one.
    status = browser.find_element("id", "filter-status")
    status.find_element("css selector", "option[value='']")  # the page's own "any status" option exists
    for option in status.find_elements("tag name", "option"):
        if option.text == "FAILED":
            option.click()
    browser.find_element("id", "apply-filters").click()
    wait_for(lambda: rows(browser) == ["broken"], "the FAILED filter")

    # The failed workflow's timeline shows the error with its traceback.
    click(browser, "#workflows tbody tr[data-id='broken']")
    wait_for(lambda: browser.find_element("id", "detail-status").text == "FAILED", "the detail of 'broken'")
    errors = wait_for(lambda: browser.find_elements("css selector", "#detail-error pre.traceback"), "a traceback")
    assert "Traceback" in errors[0].text and "flows.py" in errors[0].text  # the user's own frames
    assert "pulsarflow/runtime" not in errors[0].text  # the engine's are one click away
    shot(browser, "failed")

    # Retry it once its cause is fixed: it completes.
    flag.write_text("fixed")
    browser.find_element("id", "retry").click()
    wait_for(lambda: browser.find_element("id", "detail-status").text == "COMPLETED", "the retried workflow")

    # A retried task lists its attempts, each failed one with its error.
    for option in browser.find_element("id", "filter-status").find_elements("tag name", "option"):
        if option.get_attribute("value") == "":
            option.click()
    browser.find_element("id", "apply-filters").click()
    wait_for(lambda: "retried" in rows(browser), "the whole list again")
    click(browser, "#workflows tbody tr[data-id='retried']")
    wait_for(lambda: browser.find_element("id", "detail-status").text == "COMPLETED", "'retried' completed")
    # The previous detail also said COMPLETED: wait for this workflow's own steps to be drawn.
    attempts = wait_for(lambda: [a for a in browser.find_elements("css selector", "#steps tr.attempt")
                                 if "ConnectionError" in a.text] and
                        browser.find_elements("css selector", "#steps tr.attempt"), "the attempts of 'retried'")
    assert len(attempts) == 3 and "ConnectionError" in attempts[0].text
    shot(browser, "attempts")

    # The timeline is drawn: a bar per step, the failed attempts marked on the task's bar; a click on
    # a bar picks its row in the table below.
    drawn = wait_for(lambda: browser.execute_script("""
        const bars = [...document.querySelectorAll('#gantt rect.bar')];
        return bars.length && {bars: bars.length, steps: document.querySelectorAll('#steps tr.step').length,
            failed: document.querySelectorAll('#gantt line.failed-attempt').length,
            kind: bars[0].getAttribute('class'), width: +bars[0].getAttribute('width')};"""), "the drawn timeline")
    assert drawn["bars"] == drawn["steps"] >= 1 and drawn["failed"] == 2  # 2 of the 3 attempts failed
    assert "kind-task" in drawn["kind"] and drawn["width"] >= 3
    wait_for(lambda: browser.execute_script("""
        const bar = document.querySelector('#gantt rect.bar');
        if (bar) bar.dispatchEvent(new MouseEvent('click', {bubbles: true}));
        return document.querySelectorAll('#steps tr.step.focused').length;"""), "the bar's step picked")
    wait_for(lambda: any("pulsarflow frame(s)" in d.text for d in browser.find_elements(
        "css selector", "#steps details.engine-frames")), "the engine's frames, folded one click away")
    timeline = shot(browser, "timeline")
    assert timeline.stat().st_size > 10_000

    # Signal the waiting workflow from the page.
    click(browser, "#workflows tbody tr[data-id='wait-signal']")
    wait_for(lambda: browser.find_element("id", "detail-status").text == "RUNNING", "'wait-signal' open")
    browser.find_element("id", "signal-name").send_keys("decision")
    browser.find_element("id", "signal-data").send_keys('"from the browser"')
    browser.find_element("id", "send-signal").click()
    wait_for(lambda: browser.find_element("id", "detail-status").text == "COMPLETED", "the signalled workflow")
    assert "got from the browser" in browser.find_element("id", "detail-result").text

    # Cancel the other one.
    click(browser, "#workflows tbody tr[data-id='to-cancel']")
    wait_for(lambda: browser.find_element("id", "detail-id").text == "to-cancel", "'to-cancel' shown")
    browser.find_element("id", "cancel").click()
    wait_for(lambda: browser.find_element("id", "detail-status").text == "CANCELLED", "the cancelled workflow")
    path = shot(browser, "final")
    assert path.stat().st_size > 10_000


def test_without_the_token_the_page_reads_but_cannot_act(browser: Any, dashboard: EmbeddedDashboard) -> None:
    with dashboard.lock:
        dashboard.env.client().start(flows.approval, 3600, id="no-token")
    browser.get(dashboard.url)
    browser.execute_script("sessionStorage.clear()")
    browser.get(dashboard.url)
    wait_for(lambda: "no-token" in rows(browser), "the list, read without a token on loopback")
    click(browser, "#workflows tbody tr[data-id='no-token']")
    wait_for(lambda: browser.find_element("id", "detail-status").text == "RUNNING", "'no-token' open")
    browser.find_element("id", "cancel").click()
    wait_for(lambda: "token is missing or wrong" in browser.find_element("id", "action-result").text,
             "the refusal of an action without the token")
    time.sleep(0.5)
    with urllib.request.urlopen(f"{dashboard.url}/api/workflow?id=no-token", timeout=10) as answer:
        assert json.load(answer)["workflow"]["status"] == "RUNNING"
