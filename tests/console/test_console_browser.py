"""The console in a real headless browser (Debian's chromium and
chromium-driver, driven by Selenium) against pushlite running embedded on
127.0.0.1: log in (a wrong token first), create an instance, send a test
notification and watch its publish reach done, read the instance page with
its chart, on a desktop and on a phone-sized window, and with JavaScript
off. Screenshots of the instance page are saved under ``test-artifacts/``.
"""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

import config
from pushlite.app import create_app
from tests.conftest import free_port

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ADMIN_TOKEN = "browser-admin-token-7d4e1f"

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -r requirements.txt)")
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
)

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """pushlite embedded (in-process store, dry-run delivery) on a free 127.0.0.1 port."""
    app = create_app(config.TestingConfig(PUSHLITE_ADMIN_TOKEN=ADMIN_TOKEN))
    port = free_port()
    http = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    http.shutdown()
    thread.join(5)


def browser(tmp_path: Path, *, javascript: bool = True, width: int = 1280, height: int = 900):
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / ('profile-js' if javascript else 'profile-nojs')}",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture
def chrome(tmp_path) -> Iterator:
    driver = browser(tmp_path)
    yield driver
    driver.quit()


def wait(driver, condition, timeout: float = 10):
    return WebDriverWait(driver, timeout).until(condition)


def submit(driver, form_css: str, **fields: str) -> None:
    form = driver.find_element(By.CSS_SELECTOR, form_css)
    for name, value in fields.items():
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def log_in(driver, base: str) -> None:
    driver.get(base + "/console/")
    wait(driver, until.url_contains("/console/login"))
    submit(driver, "form", token=ADMIN_TOKEN)
    wait(driver, until.title_contains("Instances"))


def register_device(base: str, instance_id: str, token: str, interest: str) -> str:
    device = requests.post(f"{base}/device_api/v1/instances/{instance_id}/devices/fcm", json={"token": token},
                           timeout=10).json()
    requests.post(f"{base}/device_api/v1/instances/{instance_id}/devices/fcm/{device['id']}/interests/{interest}",
                  timeout=10)
    return device["id"]


def test_log_in_create_send_and_watch_it_done(chrome, server):
    chrome.get(server + "/console/")
    wait(chrome, until.url_contains("/console/login?next=/console/"))
    submit(chrome, "form", token="not-the-admin-token")
    refused = wait(chrome, until.presence_of_element_located((By.CSS_SELECTOR, "p.error")))
    assert "That is not the admin token." in refused.text
    assert "/console/login" in chrome.current_url
    submit(chrome, "form", token=ADMIN_TOKEN)
    wait(chrome, until.title_contains("Instances"))

    submit(chrome, "form[action='/console/instances']", name="Phone shop")
    wait(chrome, until.title_contains("Phone shop"))
    assert len(chrome.find_element(By.ID, "secret-key").text) == 64
    instance_id = chrome.find_element(By.CSS_SELECTOR, "dd code").text
    phone = register_device(server, instance_id, "fcm-browser-token-" + "1" * 40, "news")
    for n in range(3):
        register_device(server, instance_id, f"fcm-browser-token-{n:040d}", "news")
    chrome.find_element(By.LINK_TEXT, "Go to the instance").click()
    wait(chrome, until.presence_of_element_located((By.ID, "test-form")))
    assert chrome.find_element(By.ID, "devices-total").text == "4"

    submit(chrome, "#test-form", target=phone, title="Hello phone", body="From the console")
    wait(chrome, until.text_to_be_present_in_element((By.ID, "publish-status"), "done"))
    assert chrome.find_element(By.ID, "count-targeted").text == "1"
    assert chrome.find_element(By.ID, "count-delivered").text == "1"

    chrome.find_element(By.PARTIAL_LINK_TEXT, "Phone shop").click()
    wait(chrome, until.presence_of_element_located((By.ID, "test-form")))
    chrome.find_element(By.CSS_SELECTOR, "input[name=kind][value=interest]").click()
    submit(chrome, "#test-form", target="news", title="Hello news", body="To everyone")
    wait(chrome, until.text_to_be_present_in_element((By.ID, "publish-status"), "done"))
    assert chrome.find_element(By.ID, "count-delivered").text == "4"

    chrome.find_element(By.PARTIAL_LINK_TEXT, "Phone shop").click()
    wait(chrome, until.presence_of_element_located((By.CSS_SELECTOR, "#chart canvas")))  # uPlot drew
    outbox = chrome.find_element(By.ID, "outbox").text
    assert "Hello news" in outbox and "Hello phone" in outbox
    publishes = chrome.find_elements(By.CSS_SELECTOR, "#publishes tbody tr")
    assert len(publishes) == 2 and all("done" in row.text for row in publishes)
    ARTIFACTS.mkdir(exist_ok=True)
    chrome.set_window_size(1280, 2400)
    assert chrome.save_screenshot(str(ARTIFACTS / "console-instance.png"))

    chrome.set_window_size(390, 844)  # a phone
    chrome.refresh()
    wait(chrome, until.presence_of_element_located((By.CSS_SELECTOR, "#chart canvas")))
    assert chrome.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert chrome.find_element(By.ID, "test-form").size["width"] <= 390
    assert chrome.save_screenshot(str(ARTIFACTS / "console-instance-phone.png"))


def test_a_post_without_the_csrf_token_is_refused(chrome, server):
    log_in(chrome, server)
    chrome.execute_script("document.querySelector(\"form[action='/console/instances'] "
                          "input[name=csrf_token]\").remove()")
    submit(chrome, "form[action='/console/instances']", name="forged")
    wait(chrome, until.title_contains("403"))
    assert "did not come from this console" in chrome.page_source
    chrome.get(server + "/console/")
    assert "forged" not in chrome.page_source


def test_everything_but_the_chart_works_without_javascript(tmp_path, server):
    driver = browser(tmp_path, javascript=False)
    try:
        log_in(driver, server)
        submit(driver, "form[action='/console/instances']", name="No script")
        wait(driver, until.title_contains("No script"))
        instance_id = driver.find_element(By.CSS_SELECTOR, "dd code").text
        device = register_device(server, instance_id, "fcm-nojs-token-" + "2" * 40, "news")
        driver.find_element(By.LINK_TEXT, "Go to the instance").click()
        wait(driver, until.presence_of_element_located((By.ID, "test-form")))
        submit(driver, "#test-form", target=device, title="No JS", body="still works")
        wait(driver, until.text_to_be_present_in_element((By.ID, "publish-status"), "done"))
        driver.find_element(By.PARTIAL_LINK_TEXT, "No script").click()
        wait(driver, until.presence_of_element_located((By.ID, "outbox")))
        assert not driver.find_elements(By.CSS_SELECTOR, "#chart canvas")  # no chart without JavaScript
        assert "No JS" in driver.find_element(By.ID, "outbox").text
        assert driver.find_element(By.ID, "devices-total").text == "1"
    finally:
        driver.quit()
