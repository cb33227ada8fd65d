"""End to end in a real headless Chromium: type a question, watch the tokens appear, see a generic refusal.

Debian's `chromium` and `chromium-driver` packages, driven by Selenium through the system chromedriver (no
browser download). The app is served by uvicorn on 127.0.0.1 (port 0) in a thread, with its offline fake.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("aiobotocore")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

from examples.chat_server.app import MODEL, REFUSED_MODEL, create_app  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402
from structlog.testing import capture_logs  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
CHUNKS = ["The ", "answer ", "comes ", "one ", "token ", "at ", "a ", "time."]


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing: apt-get install chromium chromium-driver"
    return None


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Any]]:
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI installs the browser (make test-aio): its absence is a failure there
        pytest.skip(missing)
    os.environ.pop("SAFE_BEDROCK_LIVE", None)
    app = create_app()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="chat-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the chat server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/", app
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="chat-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never try to download anything
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _ask(driver: Any, url: str, *, question: str, model: str) -> None:
    driver.get(url)
    Select(driver.find_element(By.ID, "model")).select_by_value(model)
    box = driver.find_element(By.ID, "message")
    box.send_keys(question)
    driver.find_element(By.ID, "send").click()


def test_a_question_streams_its_answer_into_the_page_token_by_token(
    served: tuple[str, Any], browser: Any
) -> None:
    url, app = served
    app.state.fake.add_stream(chunks=CHUNKS, delay=0.25)
    _ask(browser, url, question="How do answers arrive?", model=MODEL)
    seen: list[str] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = browser.find_element(By.ID, "answer").text
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        if browser.find_element(By.ID, "status").text.startswith("done"):
            break
        time.sleep(0.05)
    final = "".join(CHUNKS)
    assert seen[-1] == final
    partial = [text for text in seen[:-1] if text and final.startswith(text)]
    assert len(partial) >= 3, f"the answer did not appear incrementally: {seen}"


def test_a_refused_model_shows_a_generic_message_with_a_reference(
    served: tuple[str, Any], browser: Any
) -> None:
    url, app = served
    with capture_logs() as logs:
        _ask(browser, url, question="hello", model=REFUSED_MODEL)
        error = WebDriverWait(browser, 10).until(
            lambda driver: (
                driver.find_element(By.ID, "error")
                if driver.find_element(By.ID, "error").is_displayed()
                else None
            )
        )
        shown = error.text
    assert re.fullmatch(r"This model is not available\. Reference: local-[0-9a-f]{12}", shown)
    for detail in ("ModelNotAllowedError", REFUSED_MODEL, "allow", "Fix"):
        assert detail not in shown
    # the operator finds the details in the server log under the reference the user reads out
    (entry,) = [log for log in logs if log.get("event") == "chat.refused"]
    assert shown.endswith(entry["reference"])
    assert entry["entry_to_add"] == REFUSED_MODEL
    assert browser.find_element(By.ID, "answer").text == ""
    assert all(request.model_id != REFUSED_MODEL for request in app.state.fake.requests)
