"""The console page in a real headless Chromium, under a strict Content-Security-Policy.

The app runs as `mfgos demo` does (demo plant, ledger ERP, the outbox worker beside it) on a
temporary SQLite file, served by uvicorn on a free port. The page must work with scripts and
styles from its own files only: an inline script or style attribute would be refused by the
browser and show up as an error in its console log, which the test reads.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from mfgos.config import Settings
from mfgos.guard import SECURITY_HEADERS
from mfgos.runtime import Runtime
from mfgos.server import demo_settings, worker_lifespan
from mfgos.web import CONSOLE, ConsoleChannel, create_app
from tests.conftest import service_unavailable

REPORT = "hobber 1 band ho gaya, spindle se awaaz aa rahi hai. wo 1042"
# What the console is served with (the app's guard): nothing inline, nothing from elsewhere.
CSP = SECURITY_HEADERS["content-security-policy"]
SCREENSHOT = Path("/tmp/console.png")


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        service_unavailable("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    return browser, driver


def serve_app(app: Any, what: str) -> Iterator[str]:
    """`app` served by uvicorn on a free port in a thread, as `mfgos serve` runs it; yields its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, f"the {what} did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=30)
    sock.close()


def chrome(*flags: str) -> Iterator[Any]:
    """A headless Chromium (Debian's, driven by Selenium) with the browser's log kept, and `flags`."""
    binary, driver_path = _chromium()
    try:
        from selenium import webdriver
    except ImportError:
        service_unavailable("selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[str, Runtime]]:
    settings = demo_settings(Settings(database_url=f"sqlite:///{tmp_path / 'console.db'}"))
    runtime = Runtime(settings, channels={CONSOLE: ConsoleChannel()})
    app = create_app(runtime, demo=True, lifespan=worker_lifespan(runtime, interval=0.2))
    for url in serve_app(app, "console"):
        yield url, runtime


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chrome("--window-size=1600,1000")


def _wait(browser: Any, condition: Any, timeout: float = 30) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)


def _errors(browser: Any) -> list[str]:
    """The browser console's errors and warnings: CSP refusals are reported there."""
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def _texts(browser: Any, css: str) -> list[str]:
    """The text of every element `css` selects, read at once (the page re-renders as it polls)."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.textContent)", css)


def _until_texts(browser: Any, css: str, condition: Any) -> list[str]:
    return _wait(browser, lambda b: (lambda texts: texts if condition(texts) else None)(_texts(b, css)))


def _click(browser: Any, css: str, text: str) -> None:
    browser.execute_script(
        "[...document.querySelectorAll(arguments[0])].find((e) => e.textContent === arguments[1]).click()", css, text)


def test_report_a_breakdown_and_read_its_thread(console: tuple[str, Runtime], browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    console_url, runtime = console
    browser.get(console_url)
    # The page's script ran: the people list is filled from the API.
    _until_texts(browser, "#person option", lambda names: len(names) > 5)
    response_csp = browser.execute_script(
        "return fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert response_csp == CSP, "the page was not served under the strict policy"

    Select(browser.find_element(By.ID, "person")).select_by_value("ravi")
    browser.find_element(By.ID, "text").send_keys(REPORT)
    browser.find_element(By.ID, "send").click()

    # The exception appears in the list with its severity, age and who has it.
    row = "#exceptions tbody tr[data-code='E-0001']"
    cells = _until_texts(browser, f"{row} td", bool)
    assert cells[0] == "E-0001" and cells[1] == "open", cells
    assert cells[2] in ("low", "medium", "high", "critical"), cells  # severity in words
    assert cells[3] == "breakdown" and cells[4] == "HOB-01", cells
    assert cells[5].startswith("paged: ") and "Tom Fischer" in cells[5], cells
    assert cells[6].endswith((" s", " min")), cells  # age

    # Its thread: the timeline reads as sentences, no ids or key=value.
    browser.execute_script("document.querySelector(arguments[0]).click()", row)
    sentences = _until_texts(browser, "#detail .timeline li .sentence", lambda said: len(said) >= 3)
    assert sentences[0].startswith("Ravi Kumar reported a breakdown on HOB-01 (Liebherr gear hobber 1)")
    # What is at risk depends on the hour (the demo schedule is relative to now), WO-1042 always.
    assert any(s.startswith("Impact: work orders WO-1042") for s in sentences), sentences
    assert "Paged Tom Fischer (maintenance), to acknowledge within 10 min" in sentences
    assert not [s for s in sentences if "=" in s or "_" in s], sentences

    # Tom's alert carries readable buttons; pressing Acknowledge is heard in the thread.
    Select(browser.find_element(By.ID, "person")).select_by_value("tom")
    buttons = "#messages .msg.in .buttons button"
    assert _until_texts(browser, buttons, bool) == ["Acknowledge", "Propose fix"]
    _click(browser, buttons, "Acknowledge")
    _until_texts(browser, "#detail .timeline li .sentence", lambda said: "Tom Fischer acknowledged" in said)
    _until_texts(browser, f"{row} td.holder", lambda holder: holder == ["Tom Fischer"])

    # The acknowledgement leaves only "Propose fix" on the alert: the lifecycle's buttons update, in
    # Tom's language, edits it in place rather than coming as a message of its own.
    assert _until_texts(browser, "#messages .msg.in .buttons-status", bool) == ["E-0001 bestätigt von Tom Fischer"]
    assert _texts(browser, buttons) == ["Propose fix"]
    assert not [t for t in _texts(browser, "#messages .msg.in .body") if "bestätigt von" in t], \
        "the update is no message of its own"

    browser.save_screenshot(str(SCREENSHOT))
    assert _errors(browser) == []
