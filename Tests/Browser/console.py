#!/usr/bin/env python3
"""Drives the console in headless Chromium, with JavaScript switched off (the console must work without it):
signs in with the API token, checks that a flagged order is the first row of "Needs a person", takes a
screenshot, presses one event's Redeliver button and checks the notice. Prints one JSON line; exit code 0 when
every check passed.

    python3 Tests/Browser/console.py --url http://127.0.0.1:8080 --token T --mrn P-1 --flag amount_mismatch \
        --event evt_... --screenshot /tmp/console.png
"""
import argparse
import json
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--mrn", required=True, help="the flagged order expected first")
    parser.add_argument("--flag", required=True)
    parser.add_argument("--event", required=True, help="the event to redeliver")
    parser.add_argument("--screenshot", required=True)
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()

    options = Options()
    options.add_argument("--headless=new")
    options.add_argument("--no-sandbox")
    options.add_argument("--disable-gpu")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument("--window-size=1280,1500")
    options.add_argument("--proxy-server=direct://")
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    driver.set_page_load_timeout(30)
    result = {"checks": {}}
    try:
        driver.get(args.url + "/console")
        result["checks"]["redirected to sign in"] = driver.current_url.endswith("/console/login")
        driver.find_element(By.NAME, "token").send_keys(args.token)
        driver.find_element(By.CSS_SELECTOR, "form[action='/console/login'] button").click()
        result["checks"]["signed in"] = driver.current_url.endswith("/console")
        rows = driver.find_elements(By.CSS_SELECTOR, "#attention-orders tbody tr")
        first = rows[0].text if rows else ""
        result["first attention row"] = first
        result["checks"]["flagged order first"] = args.mrn in first and args.flag in first
        driver.save_screenshot(args.screenshot)
        driver.find_element(By.CSS_SELECTOR, "button[data-test='redeliver-%s']" % args.event).click()
        notice = driver.find_element(By.CSS_SELECTOR, "[data-test='notice']").text
        result["notice"] = notice
        result["checks"]["redeliver acknowledged"] = args.event in notice
    except Exception as error:  # report, do not hide: the caller fails the test
        result["error"] = "%s: %s" % (type(error).__name__, error)
    finally:
        driver.quit()
    print(json.dumps(result))
    sys.exit(0 if result["checks"] and all(result["checks"].values()) and "error" not in result else 1)


if __name__ == "__main__":
    main()
