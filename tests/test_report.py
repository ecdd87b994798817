"""mlcli report (mlcli/workflows/report.py): one self-contained HTML file, checked statically and in a real headless
Chromium driven over the DevTools protocol (`--remote-debugging-pipe`: JSON messages ending in NUL on file
descriptors 3 and 4, so no websocket client is needed): it loads with no console error and no request leaving the
file, its title and headings are there, every image decoded, and a screenshot is taken. The harness is first shown
to catch a page that does make a request and log an error, so that a pass means something."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import invoke

import mlcli
from mlcli.workflows.report import report

pytest.importorskip("matplotlib", reason="the report's plots need matplotlib (the 'plot' extra)")

RUN = {"name": "rep", "data": {"type": "digits"}, "model": {"type": "mlp", "hidden": [16], "activation": "tanh"},
       "train": {"epochs": 3, "optimizer": {"type": "momentum", "lr": 0.05}, "diagnostics": True}}
HEADINGS = ["Summary", "Metrics per epoch", "Plots", "Per-class metrics", "Configuration", "Environment"]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return mlcli.train(RUN, runs_dir=tmp_path_factory.mktemp("runs")).run_dir


@pytest.fixture(scope="module")
def report_file(run_dir) -> Path:
    return report(run_dir)


class Page(HTMLParser):
    """Every tag with its attributes, the title and the headings' text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: dict[str, list[str]] = {"title": [], "h1": [], "h2": []}
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in self.text else None

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open:
            self.text[self._open].append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_report_is_one_self_contained_file(run_dir, report_file):
    assert report_file == run_dir / "report.html"
    page = parse(report_file)
    assert page.text["title"] == ["mlcli report: rep"] and page.text["h2"] == HEADINGS
    assert not [t for t, _ in page.tags if t in ("script", "iframe", "object", "embed", "base")]
    links = [(t, k, v) for t, a in page.tags for k, v in a.items() if k in ("src", "href", "srcset", "action")]
    assert all(v.startswith(("data:", "#")) for _, _, v in links), links
    images = [a for t, a in page.tags if t == "img"]
    assert [a["alt"] for a in images] == ["curves", "lr", "confusion", "weights", "diagnostics"]
    for a in images:
        assert base64.b64decode(a["src"].removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
    html = report_file.read_text()
    assert "default-src 'none'" in html  # the page may not fetch anything, even if it tried
    for fragment in ("macro avg", "weighted avg", "diagnostics: true", "val_accuracy", "numpy version", "command"):
        assert fragment in html, fragment


def test_report_of_a_killed_run_opens_and_escapes_what_it_shows(tmp_path):
    run = tmp_path / "killed"
    run.mkdir()
    (run / "config.yaml").write_text("name: killed\ndata: {type: iris}\nmodel: {type: mlp}\n# <script>x</script>\n")
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": NaN, "<img src=x>": 1}\n')
    result = invoke("report", run, "--out", tmp_path / "r.html")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "r.html")
    page = parse(tmp_path / "r.html")
    assert page.text["h2"] == HEADINGS
    assert not [t for t, a in page.tags if t == "script" or (t == "img" and a.get("src") == "x")]
    html = (tmp_path / "r.html").read_text()
    assert "never ended" in html and "no checkpoint" in html and "&lt;script&gt;" in html


def test_report_of_what_is_no_run_is_one_error_line(tmp_path, one_line_error):
    one_line_error(invoke("report", tmp_path), 2, "not a run directory")


class DevTools:
    """A headless Chromium and its DevTools protocol over a pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:  # in the child: the pipe ends become fds 3 and 4 (dup2 clears close-on-exec)
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self.proc = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "--window-size=1280,900", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._id = 0
        self.events: list[dict] = []
        self.session: str | None = None

    def send(self, method: str, params: dict | None = None, *, timeout: float = 30) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if self.session is not None:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        reply = self._until(lambda m: m.get("id") == self._id, timeout)
        assert "error" not in reply, (method, reply["error"])
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30) -> dict:
        found = next((e for e in self.events if e.get("method") == method), None)
        return found or self._until(lambda m: m.get("method") == method, timeout)

    def _until(self, match, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if match(message):
                    return message
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._read], [], [], max(left, 0))
            assert ready, "no answer from Chromium in time"
            chunk = os.read(self._read, 1 << 20)
            assert chunk, "Chromium closed the DevTools pipe"
            self._buffer += chunk

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def load(self, url: str) -> list[dict]:
        """Navigate to `url`, wait for its load event, and return the events the page caused."""
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")
        self.send("Runtime.evaluate", {"expression": "new Promise(r => setTimeout(r, 200))", "awaitPromise": True})
        return list(self.events)

    def evaluate(self, expression: str):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"]["value"]

    def close(self) -> None:
        try:
            self.session = None
            self.send("Browser.close", timeout=10)
            self.proc.wait(timeout=10)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._read)
            os.close(self._write)


def problems(events: list[dict], page_url: str) -> dict[str, list]:
    """Console errors, uncaught exceptions and requests to anything but the page itself or a data: URI."""
    errors = [e["params"]["entry"]["text"] for e in events
              if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    errors += [e["params"]["type"] for e in events
               if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert")]
    errors += [e["params"]["exceptionDetails"]["text"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    return {"errors": errors, "requests": [u for u in requests if u != page_url and not u.startswith("data:")]}


PAGE_FACTS = """JSON.stringify({title: document.title,
  headings: Array.from(document.querySelectorAll("h1, h2")).map(h => h.textContent),
  images: Array.from(document.images).map(i => ({complete: i.complete, width: i.naturalWidth}))})"""


@pytest.mark.skipif(BROWSER is None, reason="no Chromium on this machine: install Debian's chromium package "
                                            "(apt-get install -y chromium; .ci/run does it when missing)")
def test_report_in_headless_chromium(report_file, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>bad</title><img src="http://127.0.0.1:9/x.png">'
                   '<script>console.error("broken")</script>')
    browser = DevTools(BROWSER, tmp_path / "profile")
    try:
        browser.open_page()
        # the harness sees what it must catch: a request leaving the file and a console error
        caught = problems(browser.load(bad.as_uri()), bad.as_uri())
        assert caught["requests"] == ["http://127.0.0.1:9/x.png"] and caught["errors"], caught
        url = report_file.as_uri()
        found = problems(browser.load(url), url)
        assert found == {"errors": [], "requests": []}, found
        facts = json.loads(browser.evaluate(PAGE_FACTS))
        assert facts["title"] == "mlcli report: rep"
        assert facts["headings"] == ["mlcli report: rep", *HEADINGS]
        assert len(facts["images"]) == 5
        assert all(i["complete"] and i["width"] > 0 for i in facts["images"]), facts["images"]
        shot = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
    finally:
        browser.close()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    (tmp_path / "report.png").write_bytes(shot)
