"""The operator page `/ops` in headless Chromium, against real PostgreSQL and Redis.

Chromium runs as a subprocess against the test API on 127.0.0.1: once to dump the DOM
after the page has polled /api/v1/ops/status for a few (virtual) seconds, once to take a
screenshot. Both runs are bounded; a run that overstays is killed by its own pid. Without
/usr/bin/chromium the test fails and names the script that installs it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy.exc import SQLAlchemyError

from ledger_core.model import AccountId
from ledger_core.ownership import WorkerReport
from ledger_core.rules import partition_of
from ledger_core.store.leases import Ownership
from runtime.context import Runtime
from tests.integration.conftest import PARTITIONS, drain, open_account, transfer

# Headless Chromium runs: left out of `make test-fast`.
pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
WINDOW = (1400, 1000)
CHROMIUM_TIMEOUT_S = 60
VIRTUAL_TIME_MS = 6000
WORKER = "ledgerflow-worker-0.4242.0a1b2c"
HEARTBEAT_S = 0.5
# Markup in data the page shows: it must come out as text, never as elements.
INJECTED_DETAIL = 'constraint check failed: <img id="injected-detail" src="x">'
INJECTED_ERROR = 'partition 3: <b id="injected-error">lease lost</b>'
VOID_ELEMENTS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }
)


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: list[str] = field(default_factory=list)
    descendants: list[tuple[str, list[str]]] = field(default_factory=list)  # (tag, classes)

    def count(self, tag: str, css_class: str | None = None) -> int:
        return sum(
            1
            for t, classes in self.descendants
            if t == tag and (css_class in classes or not css_class)
        )


class DomIndex(HTMLParser):
    """Elements of a dumped DOM by id: attributes, text and descendants' tags."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.by_id: dict[str, Element] = {}
        self.body: dict[str, str | None] = {}
        self._open: list[tuple[str, Element | None]] = []
        self.feed(html)
        self.close()

    def _enter(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element | None:
        classes = (dict(attrs).get("class") or "").split()
        for _, element in self._open:
            if element is not None:
                element.descendants.append((tag, classes))
        if tag == "body":
            self.body = dict(attrs)
        ident = dict(attrs).get("id")
        if ident is None:
            return None
        element = Element(tag, dict(attrs))
        self.by_id[ident] = element
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._enter(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self._open.append((tag, element))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._enter(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index][0] == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        for _, element in self._open:
            if element is not None:
                element.text.append(data)

    def text(self, ident: str) -> str:
        return " ".join("".join(self[ident].text).split())

    def __getitem__(self, ident: str) -> Element:
        assert ident in self.by_id, f"the page has no element with id={ident!r}"
        return self.by_id[ident]


def chromium(tmp_path: Path, name: str, url: str, *action: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once on `url`; its stdout and stderr go to files in tmp_path."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the /ops page test needs headless Chromium. Install it "
            "with `scripts/ensure-chromium.sh` (as root).",
            pytrace=False,
        )
    home = tmp_path / "chromium-home"
    home.mkdir(exist_ok=True)
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        "--run-all-compositor-stages-before-draw",
        f"--user-data-dir={tmp_path / f'chromium-profile-{name}'}",
        # Nothing but the page's own requests to 127.0.0.1: no proxy, no name resolves,
        # none of the browser's own background requests.
        "--no-proxy-server",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-sync",
        "--disable-breakpad",
        "--metrics-recording-only",
        "--force-color-profile=srgb",
        *action,
        url,
    ]
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home), XDG_CACHE_HOME=str(home))
    stdout_path = tmp_path / f"chromium-{name}.out"
    stderr_path = tmp_path / f"chromium-{name}.err"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        try:
            returncode = process.wait(timeout=CHROMIUM_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()  # the one process started here, by its pid
            process.wait(timeout=10)
            pytest.fail(
                f"chromium ({name}) did not finish within {CHROMIUM_TIMEOUT_S} s; "
                f"stderr: {stderr_path.read_text(errors='replace')[-2000:]}",
                pytrace=False,
            )
    result = subprocess.CompletedProcess(
        command,
        returncode,
        stdout_path.read_text(errors="replace"),
        stderr_path.read_text(errors="replace"),
    )
    assert result.returncode == 0, f"chromium ({name}) exited {returncode}: {result.stderr[-2000:]}"
    return result


def post(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/api/v1/transactions", json=body)
    assert response.status_code == 202, response.text


@contextlib.contextmanager
def heartbeating_worker(runtime: Runtime) -> Iterator[None]:
    """A worker registry row holding partitions 0 and 1, renewed every half second by a
    thread of this test (as `worker.main` does), so the page shows a live owner."""
    ownership = Ownership(
        runtime.database, partitions=PARTITIONS, ttl_s=runtime.settings.lease_ttl_s
    )
    ownership.ensure_partitions()
    held = ownership.claim(WORKER, [0, 1], 2)
    assert sorted(held) == [0, 1]
    report = WorkerReport(
        name=WORKER,
        pinned=None,
        partitions=sorted(held),
        batches=3,
        applied=7,
        last_error=INJECTED_ERROR,
    )
    assert ownership.renew(WORKER, held, report) == {0, 1}
    stop = threading.Event()
    failures: list[Exception] = []

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                kept = ownership.renew(WORKER, held, report)
            except SQLAlchemyError as error:
                failures.append(error)
                return
            if kept != {0, 1}:
                failures.append(AssertionError(f"the test worker lost its leases: {kept}"))
                return

    thread = threading.Thread(target=beat, name="ops-page-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "the heartbeat thread did not stop"
    assert not failures, failures


def status(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/v1/ops/status")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_ops_page_shows_the_live_status(
    client: httpx.Client, runtime: Runtime, api_url: str, api_key: str, tmp_path: Path
) -> None:
    wallet = open_account(client, name="Ops Wallet", account_type="asset")
    merchant = open_account(
        client,
        name="Ops Merchant",
        account_type="liability",
        flags=["debits_must_not_exceed_credits"],
    )
    # Applied and refused postings, drained, so the rates are not zero.
    for i in range(4):
        post(client, transfer(wallet, merchant, "10.00", f"OPS-IN-{i}"))
    for i in range(2):
        post(client, transfer(merchant, wallet, "5.00", f"OPS-OUT-{i}"))
    post(client, transfer(merchant, wallet, "1000.00", "OPS-OVERDRAWN"))
    assert drain(runtime)
    # One posting a worker gave up on: failed, waiting for `ledgerflow ops retry`.
    post(client, transfer(wallet, merchant, "1.00", "OPS-POISON"))
    poisoned = partition_of(AccountId(uuid.UUID(wallet)), PARTITIONS)
    assert runtime.ledger.fail_oldest(poisoned, "apply_failed", INJECTED_DETAIL) is not None
    # Postings left queued: nothing drains them while the page looks.
    for i in range(5):
        post(client, transfer(wallet, merchant, "2.00", f"OPS-QUEUED-{i}"))
    for i in range(2):
        post(client, transfer(merchant, wallet, "1.00", f"OPS-QUEUED-BACK-{i}"))

    # The browser presents the key as HTTP Basic credentials (the key as the user name),
    # and sends them again with the page's own requests.
    page_url = api_url.replace("http://", f"http://{api_key}:@") + "/ops"
    with heartbeating_worker(runtime):
        before = status(client)
        dumped = chromium(tmp_path, "dom", page_url, "--dump-dom")
        after = status(client)
        shot = tmp_path / "ops.png"
        chromium(tmp_path, "screenshot", page_url, f"--screenshot={shot}")

    queued = before["totals"]["queued"]
    assert queued == 7
    assert after["totals"]["queued"] == queued
    assert before["totals"]["failed"] == 1
    for totals in (before["totals"], after["totals"]):
        assert (totals["live_workers"], totals["unowned_partitions"]) == (1, 2)
    dom = DomIndex(dumped.stdout)
    assert int(dom.body.get("data-updates") or 0) >= 1, "the page never got a status"
    assert "hidden" in dom["error-banner"].attrs, dom.text("error-banner")
    assert dom.text("total-queued").replace(",", "") == str(queued)
    assert dom["total-queued"].attrs.get("data-value") == str(queued)
    assert dom.text("total-failed") == "1"
    assert dom.text("live-workers") == "1"
    assert dom.text("unowned-partitions") == "2"
    assert dom.text("last-updated") != "never"
    assert dom["partitions"].count("tr") == PARTITIONS
    assert dom["workers"].count("tr", "worker") == 1
    assert WORKER in dom.text("workers")
    assert "live" in dom.text("workers")
    assert dom.text("partitions").count(WORKER) == 2
    assert dom["failed"].count("tr", "posting") == 1
    failed = dom.text("failed")
    assert "OPS-POISON" in failed
    assert "apply_failed" in failed
    assert "ledgerflow ops retry --client test OPS-POISON" in failed
    # Data goes in as text: the markup in it shows as characters and makes no element.
    assert INJECTED_DETAIL in failed
    assert INJECTED_ERROR in dom.text("workers")
    assert "injected-detail" not in dom.by_id
    assert "injected-error" not in dom.by_id
    # The chart: applied, refused and lag lines drawn from the polled samples, with labels.
    assert dom["chart"].count("polyline") >= 3
    assert "postings / s" in dom.text("chart")
    assert "now" in dom.text("chart")

    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as image:
        assert image.format == "PNG"
        assert image.size == WINDOW
        rgb = image.convert("RGB")
    pixels = WINDOW[0] * WINDOW[1]
    colours = rgb.getcolors(maxcolors=pixels)
    assert colours is not None
    assert len(colours) > 64, f"the screenshot looks blank: {len(colours)} colours"
    commonest = max(count for count, _ in colours)
    assert commonest < 0.95 * pixels, "the screenshot is nearly one colour"
    # Text was drawn: a share of the pixels is dark.
    dark = sum(rgb.convert("L").histogram()[:100])
    assert dark > 0.002 * pixels, f"hardly any dark pixels ({dark}): no text?"
