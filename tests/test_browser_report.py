"""The report's first screen in a real browser: a tiny real pipeline run (snakemake, ``ML`` train jobs, the
report rule) writes report.html; headless Chromium opens it at a laptop's viewport (1366×768) and the verdict,
the headline and the main figure (loaded) must be on that first screen, above the fold.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: JSON messages ending in
a NUL byte on file descriptors 3 and 4), so neither chromedriver nor a Python package is needed. Without a
Chromium the test skips with the reason, except in CI (``CI`` set), where that fails; ``make test-report``
installs it first when run as root (tests/browser/chromium.sh).
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_pipeline import snakemake

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 1366, 768
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str:
    found = os.environ.get("CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if found is None:
        reason = "no Chromium on PATH (tests/browser/chromium.sh install, as root, installs Debian's)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Browser:
    """One headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, executable: str, profile: Path, log: Path):
        commands, self._send = os.pipe()      # Chromium reads commands on its fd 3
        self._receive, answers = os.pipe()    # and writes answers on its fd 4

        def on_3_and_4() -> None:  # in the child: out of the way first, so neither lands on the other
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (commands, answers)]
            for target, fd in zip((3, 4), high, strict=True):
                os.dup2(fd, target)  # inheritable: Chromium keeps it across exec

        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start (the page is our own file);
        # --disable-dev-shm-usage: a container's small /dev/shm would crash its renderer
        with log.open("wb") as output:
            self.proc = subprocess.Popen(
                [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, close_fds=False,
                preexec_fn=on_3_and_4)
        os.close(commands)
        os.close(answers)
        self._buffer = b""
        self._id = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._receive, 1 << 16)
                if not chunk:
                    raise AssertionError(f"Chromium closed the pipe (exit {self.proc.poll()}) during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return dict(answer["result"])

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self.session, **params)

    def evaluate(self, expression: str) -> Any:
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._send)
        os.close(self._receive)


# Where the first screen's verdict, headline and main figure are: the text's box (a Range over its text node,
# only nodes actually rendered: the report also carries the same text inside <script> data) and the image's.
FIRST_SCREEN = r"""
(() => {
  const box = (b) => ({top: b.top, bottom: b.bottom, width: b.width, height: b.height});
  const find = (text) => {
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node; (node = walk.nextNode());) {
      if (!node.data.includes(text) || node.parentElement.closest("script, style")) continue;
      const range = document.createRange();
      range.selectNodeContents(node);
      const style = getComputedStyle(node.parentElement);
      const visible = style.visibility !== "hidden" && style.display !== "none" && parseFloat(style.opacity) > 0;
      return {...box(range.getBoundingClientRect()), text: node.data, visible};
    }
    return null;
  };
  const image = [...document.images].find((i) => i.alt === "intervals.png");
  return {width: innerWidth, height: innerHeight, verdicts: find("Verdicts"), verdict: find("On Classic, dqn"),
          headline: find("Headline: normalized IQM"),
          figure: image ? {...box(image.getBoundingClientRect()), natural: image.naturalWidth,
                           complete: image.complete} : null};
})()
"""

TINY = {
    "experiment": "browser",
    "seeds": [0],
    "threads": 1,
    "stats": {"reps": 50, "seed": 0},
    "grid": [  # evaluation only: the report, not training, is under test; two recipes: a verdict sentence
        {"recipe": recipe, "suite": "Classic", "tasks": ["CartPole-v1"],
         "args": ["train_steps=0", "evaluate_episodes=2"]} for recipe in ("dqn", "dqn_nstep1")],
}


def test_the_report_first_screen_shows_the_verdict_and_the_figure(tmp_path: Path):
    executable = find_browser()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(TINY))
    proc = snakemake(tmp_path, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    report = tmp_path / "results" / "browser" / "report.html"

    browser = Browser(executable, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.page("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT, deviceScaleFactor=1,
                     mobile=False)
        browser.page("Page.navigate", url=report.as_uri())
        deadline = time.monotonic() + 60  # the report is a script that renders its pages after loading
        while True:
            seen = browser.evaluate(FIRST_SCREEN)
            ready = seen and seen["verdict"] and seen["figure"] and seen["figure"]["complete"]
            if ready or time.monotonic() > deadline:
                break
            time.sleep(0.25)
        shot = tmp_path / "first_screen.png"
        shot.write_bytes(base64.b64decode(browser.page("Page.captureScreenshot", format="png")["data"]))
    finally:
        browser.close()

    where = f"(the first screen: {shot}; Chromium's log: {tmp_path / 'chromium.log'})"
    assert seen, f"the report did not render {where}"
    assert (seen["width"], seen["height"]) == (WIDTH, HEIGHT), where
    for name in ("verdicts", "verdict", "headline"):
        text = seen[name]
        assert text is not None, f"no {name} text rendered {where}"
        assert text["visible"] and text["width"] > 0 and text["height"] > 0, f"{name} not shown: {text} {where}"
        assert 0 <= text["top"] and text["bottom"] <= HEIGHT, f"{name} below the fold: {text} {where}"
    assert "not enough runs for a verdict" in seen["verdict"]["text"], seen["verdict"]
    figure = seen["figure"]
    assert figure is not None, f"no main figure (intervals.png) in the page {where}"
    assert figure["complete"] and figure["natural"] > 0, f"the figure did not load: {figure} {where}"
    assert figure["width"] > 0 and figure["top"] < HEIGHT and figure["bottom"] > 0, \
        f"the figure is not on the first screen: {figure} {where}"

