"""Screenshots of the review pages for the docs: sets up the demo in a temporary data dir,
serves it, and saves docs/img/conversations.png, docs/img/conversation.png (a desktop browser in
Jakarta's time zone) and docs/img/phone.png (the same call on a 390 × 844 phone).

Run:  .venv/bin/python -m scripts.screenshots   (needs Debian's chromium)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support import launch_chromium

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "CALLSCOPE_DATA_DIR": tmp,
            "CALLSCOPE_MODEL_DIR": str(ROOT / ".bench-models"),
        }
        subprocess.run(
            [sys.executable, "-m", "callscope", "demo", "--no-serve"],
            env=env,
            check=True,
            capture_output=True,
        )
        password = json.loads((Path(tmp) / "demo-credentials.json").read_text())["admin"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, "-m", "callscope", "serve", "--no-worker", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(3)
            base = f"http://127.0.0.1:{port}"
            with sync_playwright() as p:
                browser = launch_chromium(p)
                for name, viewport in (
                    ("conversation", {"width": 1280, "height": 820}),
                    ("phone", {"width": 390, "height": 844}),
                ):
                    page = browser.new_page(viewport=viewport, timezone_id="Asia/Jakarta")
                    page.goto(base + "/login")
                    page.fill("input[name=username]", "admin")
                    page.fill("input[name=password]", password)
                    page.click("button[type=submit]")
                    page.wait_for_url("**/conversations")
                    page.reload()  # (times in the browser's zone, reported at sign-in)
                    if name == "conversation":
                        page.screenshot(path=OUT / "conversations.png")
                    page.goto(base + "/conversations/1?q=speak*#details")
                    page.wait_for_function("document.querySelector('#audio').readyState >= 1")
                    page.evaluate("document.querySelector('#audio').currentTime = 44")
                    page.wait_for_timeout(500)
                    page.evaluate("window.scrollTo(0, 0)")
                    page.screenshot(path=OUT / f"{name}.png")
                    page.close()
                browser.close()
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
