"""Fixtures for the browser tests: one headless Chromium per session driving the admin
served by pytest-django's ``live_server`` (PostgreSQL slice only), a superuser, a signed-in
console and full-page screenshots under ``var/screenshots/``."""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from executions.backends import get_backend
from executions.pipelines import register_diagnostic_pipelines
from tests.conftest import PROJECT_ROOT
from tests.support.celery_worker import (  # noqa: F401 - fixtures for the real-worker test
    celery_database_url,
    celery_worker,
    celery_worker_env,
)

SCREENSHOTS = PROJECT_ROOT / "var" / "screenshots"
WAIT_SECONDS = 30
PASSWORD = "a-browser-password-123"
WINDOW = (1366, 900)


def _executable(env: str, name: str) -> str:
    path = os.environ.get(env) or shutil.which(name)
    if not path:
        raise RuntimeError(
            f"{name} is not on PATH (set {env} to override); install Debian's packages: "
            "apt-get install -y chromium chromium-driver"
        )
    return path


@pytest.fixture(scope="session")
def browser(django_db_setup: None, live_server: Any) -> Iterator[webdriver.Chrome]:
    """Headless Chromium through Debian's chromedriver; Selenium Manager stays idle
    because both the driver and the browser are named. It quits before the live server
    stops and the test database is dropped: its kept-alive sockets hold request threads,
    and with them database connections."""
    options = webdriver.ChromeOptions()
    options.binary_location = _executable("SPINE_CHROMIUM", "chromium")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--lang=en-US",
    ):
        options.add_argument(argument)
    service = Service(executable_path=_executable("SPINE_CHROMEDRIVER", "chromedriver"))
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)  # the artifacts are this run's pages
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT_SECONDS * 2)
    yield driver
    driver.quit()


@pytest.fixture(scope="session", autouse=True)
def diagnostic_pipelines() -> None:
    register_diagnostic_pipelines()


@pytest.fixture
def local_backend(settings: Any) -> Iterator[Any]:
    """Executions run in the process serving the page; failures park as dead letters."""
    settings.EXECUTION_BACKEND = "local"
    settings.SPINE_FAILURE_HANDLER = "dlq.services.park"
    backend = get_backend()
    yield backend
    assert backend.wait_idle(timeout=WAIT_SECONDS), "scheduled local runs did not finish"


@pytest.fixture
def superuser(transactional_db: None) -> User:
    return User.objects.create_superuser("ops", "ops@example.com", PASSWORD)


def is_swapped_out(exc: WebDriverException) -> bool:
    """Whether the error only says the page changed under the element (a navigation or a
    self-reload between finding an element and asking it something)."""
    return isinstance(exc, StaleElementReferenceException) or (
        "does not belong to the document" in (exc.msg or "")
    )


def is_gone(element: WebElement) -> bool:
    """Whether ``element``'s page has been replaced by another."""
    try:
        element.is_enabled()
    except WebDriverException as exc:
        if is_swapped_out(exc):
            return True
        raise
    return False


class PageWait(WebDriverWait):
    """An explicit wait that reads "the page changed under the element" as "not yet"."""

    def until(self, method: Callable[[Any], Any], message: str = "") -> Any:
        def tolerant(driver: Any) -> Any:
            try:
                return method(driver)
            except WebDriverException as exc:
                if is_swapped_out(exc):
                    return False
                raise

        return super().until(tolerant, message)


class Console:
    """The admin in the browser: open pages, wait for what they show, take screenshots."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, test_name: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "-", test_name.removeprefix("test_")).strip("-")
        self.shots: list[Path] = []

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base_url + path

    def open(self, path: str, *, ready: str = "#content") -> WebElement:
        """Load ``path`` and wait for ``ready`` (a CSS selector) to be visible."""
        self.driver.get(self.url(path))
        return self.visible(ready)

    def wait(self, seconds: float = WAIT_SECONDS) -> WebDriverWait:
        return PageWait(self.driver, seconds, poll_frequency=0.2)

    def visible(self, css: str, seconds: float = WAIT_SECONDS) -> WebElement:
        try:
            return self.wait(seconds).until(
                ec.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        except TimeoutException as exc:
            self.screenshot("timeout")
            raise AssertionError(f"{css!r} not visible on {self.driver.current_url}") from exc

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def click_and_load(self, element: WebElement, *, ready: str = "#content") -> WebElement:
        """Click something that loads a new page; wait until the old page is gone."""
        old = self.find("html")
        element.click()
        self.wait().until(lambda driver: is_gone(old))
        return self.visible(ready)

    def until(self, condition: Callable[[Any], Any], message: str) -> Any:
        try:
            return self.wait().until(condition)
        except TimeoutException as exc:
            self.screenshot("timeout")
            raise AssertionError(f"{message} (on {self.driver.current_url})") from exc

    def text(self, css: str = "body") -> str:
        return self.find(css).text

    def read(self, css: str) -> str:
        """The text of ``css`` once shown, read again if the page reloads meanwhile."""
        return self.until(
            lambda driver: driver.find_element(By.CSS_SELECTOR, css).text.strip(),
            f"{css!r} never showed any text",
        )

    def columns_fit(self) -> bool:
        """Whether the changelist shows all its columns without scrolling sideways."""
        return bool(
            self.driver.execute_script(
                "var r = document.querySelector('#changelist .results');"
                "return r.scrollWidth <= r.clientWidth;"
            )
        )

    def sign_in(self, username: str, password: str) -> None:
        """Sign in through the real login form."""
        self.open("/admin/login/?next=/admin/", ready="#login-form")
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.click_and_load(self.find('#login-form [type="submit"]'))

    def screenshot(self, name: str) -> Path:
        """Save the whole page (not only the window) as ``<test>-<name>.png``."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.prefix}-{name}.png"
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics["cssContentSize"]
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": max(size["width"], WINDOW[0]),
                    "height": min(max(size["height"], 1), 8000),
                    "scale": 1,
                },
            },
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        self.shots.append(path)
        return path


@pytest.fixture
def console(
    browser: webdriver.Chrome, live_server: Any, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The session's browser with no cookies, pointed at this test's live server."""
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    yield Console(browser, live_server.url, request.node.name)
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})


@pytest.fixture
def signed_in(console: Console, superuser: User) -> Console:
    console.sign_in(superuser.username, PASSWORD)
    return console
