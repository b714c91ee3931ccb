"""The agent console (console/) in a real headless Chromium, against the
`make run` stack (tests/local_server.py): the console is served on its own
origin, so every call it makes crosses origins (CORS), the websocket is a
browser's, and uploads and downloads go between the page and the bucket.

Two agents in two browsers (separate profiles), the second agent in two
windows. Debian's chromium and chromium-driver are required (`.ci/run`
installs them; README, Testing): without them this fails, it never skips.
CHAT_UPDATE_SCREENSHOT=1 writes the screenshot to docs/console.png.
"""

import json
import os
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.local_server import ROOT, LocalServer, eventually

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# The network is closed: nothing in the background may try to reach it.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1280,800")
LIVE_SECONDS = 2.0  # a message shows in the other agent's inbox within this


def _require_chromium():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
                    "(apt-get install --no-install-recommends chromium chromium-driver; .ci/run does)")


class Browser:
    """One Chromium with a profile of its own (a browser context)."""

    def __init__(self, tmp: Path, name: str):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp / f'profile-{name}'}")
        self.downloads = tmp / f"downloads-{name}"
        self.downloads.mkdir()
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": str(self.downloads)})

    def sign_in(self, console_url: str, agent: str):
        from selenium.webdriver.common.by import By

        # In this window (CDP acts on the current one), before the page loads: a switch to cut
        # its websocket: while window.offline is set, every connection it opens goes nowhere
        # (port 1), as when the network drops; window.sockets lists them.
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            const RealWebSocket = window.WebSocket;
            window.sockets = [];
            window.WebSocket = function (url, protocols) {
              const socket = new RealWebSocket(window.offline ? "ws://127.0.0.1:1/" : url, protocols);
              window.sockets.push(socket);
              return socket;
            };
            Object.assign(window.WebSocket, RealWebSocket);
            window.WebSocket.prototype = RealWebSocket.prototype;
        """})
        self.driver.get(console_url)
        self.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, f'button[data-agent="{agent}"]')).click()
        self.wait_for(lambda d: d.find_element(By.ID, "connection").text == "live")

    def wait_for(self, condition, seconds=10.0):
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, seconds, poll_frequency=0.05,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
                             ).until(condition)

    def click(self, css):
        """Click what `css` selects (found again if a live event re-drew it)."""
        from selenium.webdriver.common.by import By

        self.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True)

    def attribute(self, css, name):
        from selenium.webdriver.common.by import By

        return self.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, css).get_attribute(name))

    def quit(self):
        self.driver.quit()


def _unread(driver, room_id):  # called inside wait_for: a stale element is looked up again
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'li[data-chatroom-id="{room_id}"] .unread').get_attribute("data-count")


def _message(driver, text):
    """The message of the open chat showing `text` (NoSuchElementException: not yet)."""
    from selenium.common.exceptions import NoSuchElementException
    from selenium.webdriver.common.by import By

    for item in driver.find_elements(By.CSS_SELECTOR, "#messages li.message"):
        if text in item.find_element(By.CSS_SELECTOR, ".text").text:
            return item
    raise NoSuchElementException(f"no message showing {text!r}")


def _click(browser, text, selector):
    """Click a button of the message showing `text` (again if a live event re-drew it meanwhile)."""
    from selenium.webdriver.common.by import By

    browser.wait_for(lambda d: _message(d, text).find_element(By.CSS_SELECTOR, selector).click() or True)


@pytest.fixture(scope="module")
def stack():
    _require_chromium()
    with LocalServer() as server:
        with urllib.request.urlopen(server.console_url + "config.json", timeout=5) as answer:
            config = json.load(answer)
        yield server, config


@pytest.fixture
def browsers(tmp_path):
    made = []

    def open_browser(name):
        made.append(Browser(tmp_path, name))
        return made[-1]

    yield open_browser
    for browser in made:
        browser.quit()


def test_two_agents_chat_live_in_chromium(stack, browsers):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    server, config = stack
    assert {agent["name"] for agent in config["demo"]["agents"]} == {"alice", "bob", "carol"}
    assert config["api"] == server.base and config["websocket"].startswith("ws://127.0.0.1:")
    alice, bob = browsers("alice"), browsers("bob")
    a, b = alice.driver, bob.driver
    alice.sign_in(server.console_url, "alice")
    bob.sign_in(server.console_url, "bob")
    bob_first = b.current_window_handle
    b.switch_to.new_window("window")  # Bob's other window: its own sign-in (sessionStorage is per tab)
    bob.sign_in(server.console_url, "bob")
    bob_other = b.current_window_handle
    b.switch_to.window(bob_first)

    # Alice starts a chat with Bob from the console; both inboxes show it.
    a.find_element(By.CSS_SELECTOR, ".new-chat summary").click()
    a.find_element(By.ID, "new-chat-participants").send_keys("bob")  # a demo agent's name stands for its id
    a.find_element(By.ID, "new-chat-name").send_keys("Browser test")
    a.find_element(By.CSS_SELECTOR, "#new-chat-form button[type=submit]").click()
    room_a = alice.attribute("#inbox li", "data-chatroom-id")
    room_b = bob.attribute("#inbox li", "data-chatroom-id")
    alice.click(f'li[data-chatroom-id="{room_a}"] button')
    composer = alice.wait_for(lambda d: d.find_element(By.ID, "message-input"))
    alice.wait_for(lambda d: composer.is_displayed() and d.switch_to.active_element == composer)

    # Alice sends with Enter; Bob's inbox shows it, unread, within 2 s.
    composer.send_keys("hello bob", Keys.ENTER)
    sent = time.monotonic()
    bob.wait_for(lambda d: _unread(d, room_b) == "1", seconds=LIVE_SECONDS)
    live_seconds = time.monotonic() - sent
    print(f"A's message unread in B's inbox after {live_seconds:.2f} s")
    preview = f'li[data-chatroom-id="{room_b}"] .preview'
    bob.wait_for(lambda d: "hello bob" in d.find_element(By.CSS_SELECTOR, preview).text)
    b.switch_to.window(bob_other)
    bob.wait_for(lambda d: _unread(d, room_b) == "1")

    # Bob opens it in his first window: read on view, and the other window's count clears.
    b.switch_to.window(bob_first)
    bob.click(f'li[data-chatroom-id="{room_b}"] button')
    bob.wait_for(lambda d: _message(d, "hello bob"))
    b.switch_to.window(bob_other)
    bob.wait_for(lambda d: _unread(d, room_b) == "0")
    b.switch_to.window(bob_first)

    # Bob reacts; Alice sees the reaction.
    _click(bob, "hello bob", "button.react")
    alice.wait_for(lambda d: _message(d, "hello bob").find_element(
        By.CSS_SELECTOR, '.reactions button[data-count="1"]'))

    # Alice edits her message; Bob sees the new text. Bob replies in its thread; Alice sees the reply.
    _click(alice, "hello bob", "button.edit")
    composer.send_keys(Keys.CONTROL, "a")
    composer.send_keys("hello bob, edited", Keys.ENTER)
    bob.wait_for(lambda d: _message(d, "hello bob, edited"))
    _click(bob, "hello bob, edited", "button.reply")
    reply = bob.wait_for(lambda d: d.find_element(By.ID, "reply-input"))
    bob.wait_for(lambda d: reply.is_displayed())
    reply.send_keys("a reply in the thread", Keys.ENTER)
    bob.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, "#replies li.message"))
    alice.wait_for(lambda d: _message(d, "a reply in the thread"))

    # Alice attaches a file; Bob downloads the same bytes from the bucket.
    payload = bytes(range(256)) * 40 + b"the end\n"
    upload = Path(tempfile.mkdtemp()) / "report.bin"
    upload.write_bytes(payload)
    a.find_element(By.ID, "file-input").send_keys(str(upload))
    composer.send_keys("the file", Keys.ENTER)
    _click(bob, "the file", "button.download")
    downloaded = bob.downloads / "report.bin"
    assert eventually(lambda: downloaded.exists() and downloaded.read_bytes() == payload, 10), \
        sorted(p.name for p in bob.downloads.iterdir())
    shutil.rmtree(upload.parent)

    if os.environ.get("CHAT_UPDATE_SCREENSHOT") == "1":  # the README's picture: Alice's view, now
        alice.wait_for(lambda d: _message(d, "the file").find_element(By.CSS_SELECTOR, "button.download"))
        a.save_screenshot(str(ROOT / "docs" / "console.png"))

    # Alice deletes a message; Bob sees it deleted.
    _click(alice, "the file", "button.delete")
    bob.wait_for(lambda d: d.find_element(By.CSS_SELECTOR, "#messages li.message.deleted"))

    # Bob's connection drops; what Alice sends meanwhile shows once he is back (listed, not pushed).
    b.execute_script("window.offline = true; window.sockets.forEach((socket) => socket.close());")
    bob.wait_for(lambda d: d.find_element(By.ID, "connection").text == "reconnecting")
    composer.send_keys("sent while bob was away", Keys.ENTER)
    alice.wait_for(lambda d: _message(d, "sent while bob was away"))
    time.sleep(0.5)  # its push went to no connection of Bob's
    assert not b.find_elements(By.XPATH, "//li[contains(., 'sent while bob was away')]")
    b.execute_script("window.offline = false;")
    bob.wait_for(lambda d: d.find_element(By.ID, "connection").text == "live", seconds=15)
    bob.wait_for(lambda d: _message(d, "sent while bob was away"))

    # A chatroom event may carry only the read state, keyed by chatroom_id: merged into the inbox.
    b.switch_to.window(bob_other)
    b.execute_script("""
        const [socket, room] = [window.sockets.at(-1), arguments[0]];
        const event = {type: "chatroom_read_state", data: {chatroom_id: room, unread_count: 7}};
        socket.dispatchEvent(new MessageEvent("message", {data: JSON.stringify(event)}));
    """, room_b)
    bob.wait_for(lambda d: _unread(d, room_b) == "7")
    b.switch_to.window(bob_first)

    # An error answer from the API (another origin) is readable by the page: status, body and exposed headers.
    answers = a.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const config = await (await fetch("config.json")).json();
        const token = sessionStorage.getItem("console-token");
        const read = async (path, init) => {
          const answer = await fetch(config.api + path, init);
          return {status: answer.status, body: await answer.json()};
        };
        done([
          await read("/chats/not-a-uuid", {headers: {Authorization: `Bearer ${token}`}}),
          await read("/chats"),
          await read("/no-such-route"),
          await read("/chatmessages", {method: "POST", body: "{}", headers: {Authorization: `Bearer ${token}`,
                                       "Content-Type": "application/json", "Idempotency-Key": "k1"}}),
        ]);
    """)
    assert answers[0]["status"] == 400 and answers[0]["body"]["Code"] == "BadRequestError"
    assert "chat_id" in answers[0]["body"]["Message"]
    assert answers[1]["status"] == 401 and answers[1]["body"]["Code"] == "UnauthorizedError"
    assert answers[2]["status"] == 404 and answers[2]["body"]["Code"] == "NotFoundError"  # no such route
    assert answers[3]["status"] == 400 and "chat_id" in answers[3]["body"]["Message"]  # after a preflight
    assert live_seconds < LIVE_SECONDS
