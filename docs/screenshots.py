"""Screenshots of every page for the README, from a running service.

    python docs/screenshots.py http://127.0.0.1:8000

submits a few reviews (one through the form), waits for them, gives feedback on one, asks why
the last one scored as it did, then saves docs/{submit,result,explanation,history,models,
dashboard}.png with headless Chromium, and docs/runs.png: the Models page's retraining runs.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

DOCS = Path(__file__).resolve().parent
REVIEWS = [
    "One of the most moving films I have seen in years; the cast is superb.",
    "Two hours of my life I will never get back. Dull, predictable and badly acted.",
    "The plot is thin, but the photography is gorgeous and the ending works.",
    "I wanted to like it. I really did. The second half falls apart completely.",
    "A charming little comedy with a big heart and a great soundtrack.",
    # explained: mixed, so that the score moves from sentence to sentence
    "The first hour drags and the dialogue is clumsy. Then it finds its feet: the last act is "
    "gripping and the two leads are wonderful. A flawed film, but a moving one.",
]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    args = parser.parse_args()
    body = json.dumps({"reviews": [{"text": t} for t in REVIEWS]}).encode()
    request = urllib.request.Request(
        f"{args.base}/api/v1/reviews", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        explained = json.load(response)["ids"][-1]

    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        browser.get(f"{args.base}/")
        browser.find_element(By.ID, "text").send_keys(
            "A quiet, patient film that rewards attention: beautifully shot and acted."
        )
        browser.save_screenshot(DOCS / "submit.png")
        browser.find_element(By.CSS_SELECTOR, "form[action='/reviews'] button").click()
        WebDriverWait(browser, 120).until(
            ec.text_to_be_present_in_element((By.ID, "status"), "done")
        )
        browser.find_element(By.ID, "right").click()
        WebDriverWait(browser, 15).until(ec.presence_of_element_located((By.ID, "your-label")))
        browser.save_screenshot(DOCS / "result.png")
        browser.get(f"{args.base}/reviews/{explained}")
        WebDriverWait(browser, 60).until(ec.element_to_be_clickable((By.ID, "why-button"))).click()
        WebDriverWait(browser, 60).until(ec.visibility_of_element_located((By.ID, "explanation")))
        save_whole_page(browser, "explanation")
        time.sleep(1)
        for page in ("history", "models", "dashboard"):
            browser.get(f"{args.base}/{page}")
            save_whole_page(browser, page)
        browser.get(f"{args.base}/models")
        runs = browser.find_element(By.ID, "runs")
        browser.execute_script("arguments[0].scrollIntoView()", runs)
        runs.screenshot(str(DOCS / "runs.png"))
    finally:
        browser.quit()


def save_whole_page(browser, name: str) -> None:
    """The page as tall as it is, from 900 to 2400 pixels; the window's size counts its frame."""
    frame, height = browser.execute_script(
        "return [outerHeight - innerHeight, document.documentElement.scrollHeight]"
    )
    browser.set_window_size(1280, min(max(900, height), 2400) + frame)
    browser.save_screenshot(DOCS / f"{name}.png")
    browser.set_window_size(1280, 900)


if __name__ == "__main__":
    main()
