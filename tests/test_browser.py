"""The pages in a real browser (Debian's Chromium, headless, driven by Selenium) against a real
worker on a real Redis."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from sqlalchemy import select

from sentiment_core.db import (
    Feedback,
    Review,
    ReviewStatus,
    Sentiment,
    make_engine,
    make_sessionmaker,
)
from tests.factories import NEGATIVE, POSITIVE
from web.pages import LABEL_BATCH

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
# The browser must not reach for the network: this machine's is closed, and tests need none.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"),
        reason="needs Debian's chromium and chromium-driver (CI installs them)",
    ),
]


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM or "chromium"
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or "chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def submit_in_form(browser, base: str, text: str) -> int:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base}/")
    browser.find_element(By.ID, "text").send_keys(text)
    browser.find_element(By.CSS_SELECTOR, "form[action='/reviews'] button").click()
    WebDriverWait(browser, 15).until(ec.url_matches(r"/reviews/\d+$"))
    return int(browser.current_url.rsplit("/", 1)[1])


def explain_in_page(browser, base: str, text: str) -> None:
    """Submits `text`, waits for its score, clicks "Why?" and waits for the explanation."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    submit_in_form(browser, base, text)
    WebDriverWait(browser, 120).until(ec.element_to_be_clickable((By.ID, "why-button"))).click()
    WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "explanation")))


# The explained review as shown, less the weights written for screen readers.
SHOWN_TEXT = """const words = document.getElementById("words").cloneNode(true);
words.querySelectorAll(".sr-only").forEach((node) => node.remove());
return words.textContent;"""


def feedback_rows(settings) -> list[tuple[int, str]]:
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = [(f.review_id, f.label.value) for f in session.scalars(select(Feedback))]
    engine.dispose()
    return rows


def fetched(browser) -> list[str]:
    """The URLs the page has requested since it loaded."""
    return browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )


def test_the_result_appears_without_a_reload_and_wrong_is_recorded(service, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    settings, base = service
    review_id = submit_in_form(browser, base, POSITIVE[0])
    browser.execute_script("window.sameDocument = true")
    # The worker is still starting, so the page was rendered "queued": only waiting on the API
    # (a long poll) can finish it.
    WebDriverWait(browser, 120).until(ec.text_to_be_present_in_element((By.ID, "status"), "done"))
    assert browser.execute_script("return window.sameDocument") is True
    assert f"{base}/api/v1/reviews/{review_id}?wait=25" in fetched(browser)
    assert browser.find_element(By.ID, "sentiment").text == "positive"
    width = browser.find_element(By.ID, "bar").value_of_css_property("width")
    assert float(width.removesuffix("px")) > 0

    browser.find_element(By.ID, "wrong").click()
    WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.ID, "your-label")))
    assert "recorded that this review is negative" in browser.page_source
    assert feedback_rows(settings) == [(review_id, "negative")]


def test_a_submissions_history_fills_in_from_its_event_stream(service, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, base = service
    browser.get(f"{base}/")
    browser.find_element(By.ID, "lines").send_keys("\n".join([POSITIVE[0], NEGATIVE[0]]))
    browser.find_element(By.CSS_SELECTOR, "form[action='/reviews/batch'] button").click()
    WebDriverWait(browser, 15).until(lambda b: "/history?submission=" in b.current_url)
    submission = browser.current_url.rsplit("=", 1)[1]
    browser.execute_script("window.sameDocument = true")
    statuses = (
        "return [...document.querySelectorAll('#reviews td:nth-child(3)')].map(c => c.textContent)"
    )
    # Rendered "queued" while the worker starts: only the event stream can fill the rows in.
    WebDriverWait(browser, 120).until(lambda b: b.execute_script(statuses) == ["done", "done"])
    assert browser.execute_script("return window.sameDocument") is True
    assert f"{base}/api/v1/submissions/{submission}/events" in fetched(browser)
    sentiments = [
        td.text for td in browser.find_elements(By.CSS_SELECTOR, "#reviews td:nth-child(4)")
    ]
    assert sentiments == ["negative", "positive"]  # newest first


def test_a_script_in_a_review_is_shown_as_text(service, browser) -> None:
    from selenium.webdriver.common.by import By

    settings, base = service
    hostile = '<script>document.title="pwned"</script><b id="injected">bold</b>'
    review_id = submit_in_form(browser, base, hostile)
    assert browser.find_element(By.CSS_SELECTOR, "blockquote").text == hostile
    assert browser.title == f"Review {review_id}"
    assert browser.find_elements(By.ID, "injected") == []
    browser.get(f"{base}/history")
    assert hostile[:60] in browser.find_element(By.CSS_SELECTOR, "td.text").text
    assert browser.find_elements(By.ID, "injected") == [] and browser.title == "History"
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        assert session.get(Review, review_id).text == hostile
    engine.dispose()


def test_why_shades_each_word_by_its_weight(service, browser) -> None:
    from selenium.webdriver.common.by import By

    _, base = service
    text = f"{POSITIVE[0]}. {NEGATIVE[0]}!"
    explain_in_page(browser, base, text)
    assert browser.execute_script(SHOWN_TEXT) == text
    words = browser.execute_script(
        """return [...document.querySelectorAll("#words .word")].map((w) => [w.firstChild.data,
        w.className, w.title, w.lastChild.textContent, getComputedStyle(w).backgroundColor])"""
    )
    (wonderful,) = [w for w in words if w[0] == "wonderful"]
    _, kind, title, spoken, background = wonderful
    assert kind == "word pos" and re.fullmatch(r"weight \+\d+\.\d\d", title)
    assert spoken == f" ({title.removeprefix('weight ')})"
    assert background.startswith("rgba(230, 97, 1, ") and float(background[17:-1]) > 0
    toward = {
        side: [li.text for li in browser.find_elements(By.CSS_SELECTOR, f"#top-{side} li")]
        for side in ("positive", "negative")
    }
    assert 1 <= len(toward["positive"]) <= 5 and 1 <= len(toward["negative"]) <= 5
    assert all(re.fullmatch(r"\S+ \+\d+\.\d\d", item) for item in toward["positive"])
    assert all(re.fullmatch(r"\S+ −\d+\.\d\d", item) for item in toward["negative"])
    plot = browser.find_element(By.CSS_SELECTOR, "#running svg[role='img']")
    assert plot.get_attribute("aria-label").startswith("Probability positive after each sentence")
    assert len(plot.find_elements(By.CSS_SELECTOR, "circle")) == 2  # two sentences
    assert not browser.find_element(By.ID, "why-button").is_displayed()


def test_markup_in_an_explained_review_stays_text(service, browser) -> None:
    from selenium.webdriver.common.by import By

    _, base = service
    text = (
        "wonderful <script>window.pwned = 1</script> brilliant "
        '<img src=x onerror="window.pwned = 1"> awful'
    )
    explain_in_page(browser, base, text)
    assert browser.find_element(By.ID, "words").is_displayed()
    assert browser.execute_script(SHOWN_TEXT) == text
    assert browser.find_elements(By.CSS_SELECTOR, "#why script, #why img") == []
    assert browser.execute_script("return window.pwned") is None


def test_skipping_a_whole_batch_of_the_label_queue_shows_the_next(service, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    settings, base = service
    engine = make_engine(settings.database_url)
    unsure = Sentiment.of(0.5)
    with make_sessionmaker(engine)() as session:
        session.add_all(
            Review(text=f"unsure {i}", status=ReviewStatus.done, score=0.5, sentiment=unsure)
            for i in range(LABEL_BATCH + 5)
        )
        session.commit()
    engine.dispose()

    def shown() -> str | None:
        items = browser.find_elements(By.CSS_SELECTOR, "#label-queue li:not([hidden])")
        return items[0].get_attribute("data-id") if items else None

    browser.get(f"{base}/label")
    skipped = set()
    for _ in range(LABEL_BATCH):
        skipped.add(shown())
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)
        WebDriverWait(browser, 15).until(lambda _: shown() not in skipped | {None})
    assert len(skipped) == LABEL_BATCH


def test_the_label_queue_takes_labels_from_the_keyboard(service, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    settings, base = service
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = [
            Review(text=text, status=ReviewStatus.done, score=score, sentiment=Sentiment.of(score))
            for text, score in (("sure", 0.99), ("unsure", 0.5), ("fairly unsure", 0.6))
        ]
        session.add_all(rows)
        session.commit()
        sure, unsure, fairly = (row.id for row in rows)
    engine.dispose()

    def shown() -> int:
        return int(
            browser.find_element(By.CSS_SELECTOR, "#label-queue li:not([hidden])").get_attribute(
                "data-id"
            )
        )

    def press(key: str, then: str) -> None:
        browser.find_element(By.TAG_NAME, "body").send_keys(key)
        WebDriverWait(browser, 15).until(
            ec.text_to_be_present_in_element((By.ID, "label-status"), then)
        )

    browser.get(f"{base}/label")
    assert shown() == unsure
    browser.execute_script("window.realFetch = window.fetch; window.fetch = () => fetch.no.such;")
    press(Keys.ARROW_LEFT, "Not recorded: the service could not be reached. Try again.")
    browser.execute_script("window.fetch = window.realFetch")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.CONTROL, Keys.ARROW_RIGHT)
    press(Keys.ARROW_LEFT, "Labeled negative.")  # the browser's shortcut above labeled nothing
    assert shown() == fairly
    browser.find_element(By.CSS_SELECTOR, 'button[data-label="positive"]').click()
    WebDriverWait(browser, 15).until(
        ec.text_to_be_present_in_element((By.ID, "label-status"), "Labeled positive.")
    )
    assert shown() == sure
    # Space skips after a click too (a focused button would take it as a click of its own);
    # the queue fetched again holds only the skipped review, which stays skipped.
    browser.switch_to.active_element.send_keys(Keys.SPACE)
    WebDriverWait(browser, 15).until(
        ec.text_to_be_present_in_element(
            (By.ID, "label-status"), "Nothing left to label but the reviews you skipped."
        )
    )
    assert sorted(feedback_rows(settings)) == sorted([(unsure, "negative"), (fairly, "positive")])
