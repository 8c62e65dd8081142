"""Screenshots of every page for the README, from a running service.

    python docs/screenshots.py http://127.0.0.1:8000

submits a few reviews (one through the form), waits for them, gives feedback on one, then
saves docs/{submit,result,history,models,dashboard}.png with headless Chromium.
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
    urllib.request.urlopen(request, timeout=10).close()

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
        time.sleep(1)
        for page in ("history", "models", "dashboard"):
            browser.get(f"{args.base}/{page}")
            height = browser.execute_script("return document.body.scrollHeight")
            browser.set_window_size(1280, min(max(900, height + 40), 2400))
            browser.save_screenshot(DOCS / f"{page}.png")
            browser.set_window_size(1280, 900)
    finally:
        browser.quit()


if __name__ == "__main__":
    main()
