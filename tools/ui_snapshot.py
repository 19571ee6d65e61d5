"""Screenshots of the Dagster UI with headless Chromium: the asset lineage and one asset's history.

    python -m tools.ui_snapshot --out ui-snapshots            # starts its own webserver
    python -m tools.ui_snapshot --url http://127.0.0.1:3000   # a running `dagster dev`

Without --url it starts `dagster-webserver` on 127.0.0.1 (a free port) over the same instance and
config as the CLI ($DAGSTER_HOME, default `.dagster_home` in the current directory; --config, else
$SEGMENTATION_CONFIG, else the built-in default) and stops it by its PID afterwards. Before each
screenshot the page's DOM must show text that only appears once the data has loaded, so a blank or
half-loaded page fails loudly instead of producing a useless picture.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from segmentation_pipeline.cli import DEFINITIONS_MODULE, LOCATION_NAME
from segmentation_pipeline.config import CONFIG_ENV_VAR, config_path_in_use, load_config
from segmentation_pipeline.orchestration.instance import ensure_instance_home, instance_home

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PAGE_TIMEOUT = 60  # seconds for a page to show its data
SETTLE_SECONDS = 1.5


@dataclass(frozen=True)
class Page:
    file: str
    path: str  # URL path on the webserver
    expected_text: tuple[str, ...]  # in the rendered DOM once the page has loaded its data
    size: tuple[int, int] = (1600, 1000)


def pages(asset: str) -> list[Page]:
    return [
        Page("lineage.png", "/asset-groups", ("Global asset lineage", "ingest", "features", "charts")),
        Page(
            "lineage_assets.png",
            "/assets/raw_transactions?view=lineage&lineageScope=downstream&lineageDepth=99",
            ("raw_transactions", "clean", "models", "personas", "charts"),  # long names are shortened when zoomed out
            size=(2200, 1400),
        ),
        Page(f"{asset}_history.png", f"/assets/{asset}?view=events", (asset, "Materialized in run")),
    ]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_webserver(dagster_home: Path, config_path: Path, port: int, log_path: Path) -> subprocess.Popen:
    """`dagster-webserver` on 127.0.0.1:port over `dagster_home`, its definitions built for `config_path`;
    its own session, so stopping it stops its children.

    The code location is loaded from a workspace file beside the log that names it as the project does
    (as `segmentation-pipeline dev` does), so Dagster does not warn about a location name mismatch."""
    log_path = Path(log_path)
    workspace = log_path.with_name("workspace.yaml")
    workspace.write_text(
        "load_from:\n  - python_module:\n"
        f"      module_name: {DEFINITIONS_MODULE}\n      location_name: {LOCATION_NAME}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "DAGSTER_HOME": str(ensure_instance_home(dagster_home)), CONFIG_ENV_VAR: str(config_path)}
    command = [sys.executable, "-m", "dagster_webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_until_ready(base_url: str, server: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise RuntimeError(f"the webserver exited with code {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{base_url} did not answer within {timeout:.0f}s")


def stop_webserver(server: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM to the server's PID; its process group is killed if anything outlives the grace period."""
    if server.poll() is None:
        os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # the code server child, if it outlived the webserver
    except (ProcessLookupError, PermissionError):
        pass
    server.wait()


def graphql(base_url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def find_chromium() -> str | None:
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class HeadlessChromium:
    """One headless Chromium driven over the DevTools protocol on a pipe (stdlib only, no websocket).

    Unlike a one-shot `--screenshot`, it waits in real time until the page shows what it should: the UI
    keeps polling the server, which stalls Chromium's virtual-time budget."""

    def __init__(self, executable: str):
        commands_in, commands_out = os.pipe()
        replies_in, replies_out = os.pipe()

        def use_pipes_as_fds_3_and_4() -> None:  # where --remote-debugging-pipe expects them
            commands, replies = os.dup(commands_in), os.dup(replies_out)
            os.dup2(commands, 3)
            os.dup2(replies, 4)

        self.process = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", "about:blank"],
            close_fds=False,  # our other descriptors are close-on-exec; 3 and 4 must survive
            preexec_fn=use_pipes_as_fds_3_and_4,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(commands_in)
        os.close(replies_out)
        self.commands, self.replies = commands_out, replies_in
        self.last_id, self.pending = 0, b""

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self.last_id += 1
        message = {"id": self.last_id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:  # replies and events arrive NUL-separated; skip events until our reply
            while b"\0" not in self.pending:
                chunk = os.read(self.replies, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium exited")
                self.pending += chunk
            raw, self.pending = self.pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"Chromium {method}: {reply['error']}")
                return reply["result"]

    def open(self, url: str, page: Page) -> str:
        """A new tab of the page's size, navigating to `url`; returns its session."""
        tab = self.call("Target.createTarget", url="about:blank", newWindow=True)["targetId"]
        session = self.call("Target.attachToTarget", targetId=tab, flatten=True)["sessionId"]
        width, height = page.size
        self.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", session, url=url)
        return session

    def capture(self, session: str, url: str, page: Page, target: Path) -> Path:
        """Wait until the tab's DOM shows the page's expected text, then save a PNG of its viewport."""
        deadline = time.monotonic() + PAGE_TIMEOUT
        missing = list(page.expected_text)
        while missing and time.monotonic() < deadline:
            evaluated = self.call("Runtime.evaluate", session, expression="document.documentElement.outerHTML", returnByValue=True)
            html = evaluated["result"].get("value") or ""  # no value while the page is navigating
            missing = [text for text in page.expected_text if text not in html]
            if missing:
                time.sleep(0.25)
        if missing:
            raise RuntimeError(f"{url} did not render {missing} within {PAGE_TIMEOUT}s (is the instance materialized?)")
        self.call("Page.bringToFront", session)
        time.sleep(SETTLE_SECONDS)  # let the graph finish its zoom-to-fit
        png = base64.b64decode(self.call("Page.captureScreenshot", session, format="png")["data"])
        target.write_bytes(png)
        return target

    def close(self) -> None:
        """SIGTERM to Chromium's process group (browser, renderers, helpers); SIGKILL if it lingers."""
        os.close(self.commands)
        os.close(self.replies)
        for signal_number in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal_number)
            try:
                self.process.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue


def take_snapshots(base_url: str, out_dir: Path, asset: str, chromium: str) -> list[Path]:
    """Every page loads in its own tab at once, then each is captured once it shows its data."""
    out_dir.mkdir(parents=True, exist_ok=True)
    browser = HeadlessChromium(chromium)
    try:
        sessions = [(browser.open(base_url + page.path, page), page) for page in pages(asset)]
        return [browser.capture(session, base_url + page.path, page, out_dir / page.file) for session, page in sessions]
    finally:
        browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ui_snapshot", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running webserver (default: start one over $DAGSTER_HOME)")
    parser.add_argument("--out", default="ui-snapshots", help="folder for the PNG files (default: ui-snapshots)")
    parser.add_argument("--asset", default="rfm", help="asset whose materialization history is shown (default: rfm)")
    parser.add_argument("--config", help=f"pipeline YAML (default: ${CONFIG_ENV_VAR}, else the built-in default)")
    args = parser.parse_args(argv)

    chromium = find_chromium()
    if chromium is None:
        print("error: Chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    out_dir = Path(args.out).resolve()
    server = None
    if args.url:
        base_url = args.url.rstrip("/")
    else:
        config_path = config_path_in_use(args.config)
        load_config(config_path)
        home = instance_home()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        out_dir.mkdir(parents=True, exist_ok=True)
        server = start_webserver(home, config_path, port, out_dir / "webserver.log")
        print(f"webserver pid {server.pid} on {base_url} over {home}")
    try:
        wait_until_ready(base_url, server)
        for path in take_snapshots(base_url, out_dir, args.asset, chromium):
            print(f"wrote {path}")
    except (RuntimeError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if server is not None:
            stop_webserver(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
