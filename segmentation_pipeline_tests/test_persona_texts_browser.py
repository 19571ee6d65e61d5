"""Open the persona map in headless Chromium: the plot renders every persona and the page makes no
network request. Every host name resolves to a local server that counts requests, so a reference to
a CDN would show up as a request. Skipped when Chromium is absent."""

import os
import re
import subprocess
from http.server import BaseHTTPRequestHandler

import pytest

from segmentation_pipeline.persona_texts.analysis import analyse_corpus, load_corpus
from segmentation_pipeline.persona_texts.settings import PersonaTextsSettings
from segmentation_pipeline_tests.conftest import local_http_server

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="chromium is not installed")

PROBE = """<script>
window.addEventListener('load', function () {
  setTimeout(function () {
    var map = document.getElementById('persona-map');
    var points = map.querySelectorAll('.scatterlayer .point').length;
    var menus = map.querySelectorAll('.updatemenu-container').length;
    var out = document.createElement('pre');
    out.id = 'map-probe';
    out.textContent = [points, menus, map.data ? map.data.length : 0].join('|');
    document.body.appendChild(out);
  }, 500);
});
</script>"""


class _Counter(BaseHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):
        _Counter.requests.append(self.headers.get("Host", "") + self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def request_counter():
    _Counter.requests = []
    with local_http_server(_Counter) as url:
        yield int(url.rsplit(":", 1)[1])


def render(html_text: str, directory, port: int) -> str:
    page = directory / "map.html"
    page.write_text(html_text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={directory / 'profile'}",
        "--disable-features=NetworkTimeServiceQuerying",  # Chromium's own clock check, not the page's
        f"--host-resolver-rules=MAP * 127.0.0.1:{port}", "--virtual-time-budget=15000", "--dump-dom", page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert completed.returncode == 0, completed.stderr[-2000:]
    probe = re.search(r'<pre id="map-probe">(.*?)</pre>', completed.stdout)
    assert probe, "the probe did not run: " + completed.stderr[-2000:]
    return probe.group(1)


@pytest.fixture(scope="module")
def map_html():
    settings = PersonaTextsSettings(embedded_count=120)
    return analyse_corpus(load_corpus(settings), settings).html


def test_map_renders_every_persona_without_network(map_html, tmp_path, request_counter):
    points, menus, traces = render(map_html, tmp_path, request_counter).split("|")
    assert int(points) == 120 and int(menus) >= 1 and int(traces) > 1
    assert _Counter.requests == []


def test_a_network_reference_would_be_caught(map_html, tmp_path, request_counter):
    injected = map_html.replace("</head>", '<link rel="stylesheet" href="http://cdn.example.org/style.css"></head>')
    render(injected, tmp_path, request_counter)
    assert _Counter.requests == ["cdn.example.org/style.css"]
