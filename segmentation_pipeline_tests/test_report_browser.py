"""Render a written report in headless Chromium and check that every image really decodes.

The report has no script; the test copies it with a small probe script appended, which on `load`
records each image's decoded size and the alpha of its bottom-right pixel (0 when a PNG is cut
short) into the DOM that `--dump-dom` prints. Network access is mapped to nowhere, so an image or
stylesheet that needs the network would show up as broken too. Skipped when Chromium is absent.
"""

import os
import re
import shutil
import subprocess
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segmentation_pipeline import charts
from segmentation_pipeline.retail.personas import build_personas
from segmentation_pipeline.report import build_report, report_references, write_report

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")

PROBE = """<script>
window.addEventListener('load', function () {
  var rows = Array.prototype.map.call(document.images, function (img) {
    var alpha = -1;
    if (img.naturalWidth > 0) {
      var canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      var context = canvas.getContext('2d');
      context.drawImage(img, 0, 0);
      alpha = context.getImageData(img.naturalWidth - 1, img.naturalHeight - 1, 1, 1).data[3];
    }
    return [img.alt, img.naturalWidth, img.naturalHeight, alpha].join('|');
  });
  var out = document.createElement('pre');
  out.id = 'image-probe';
  out.textContent = rows.join('\\n');
  document.body.appendChild(out);
});
</script>"""


def rendered_images(html_text: str, directory) -> tuple[dict[str, tuple[int, int, int]], str]:
    """{alt: (naturalWidth, naturalHeight, bottom-right alpha)} and the DOM Chromium rendered."""
    page = directory / "probe.html"
    page.write_text(html_text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={directory / 'profile'}",
        "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    dom = completed.stdout
    probe = re.search(r'<pre id="image-probe">(.*?)</pre>', dom, flags=re.DOTALL)
    assert probe, "the probe did not run: " + completed.stderr[-2000:]
    images = {}
    for line in filter(None, probe.group(1).split("\n")):
        alt, width, height, alpha = line.rsplit("|", 3)
        images[alt] = (int(width), int(height), int(alpha))
    return images, dom


@pytest.fixture(scope="module")
def written_report(tmp_path_factory):
    n = 90
    rng = np.random.default_rng(5)
    labels = np.arange(n) % 3
    result = SimpleNamespace(
        method="fuzzy_cmeans", customer_ids=np.array([f"K{i}" for i in range(n)]), labels=labels,
        memberships=rng.dirichlet(np.ones(3), size=n), n_clusters=3,
        prepared=rng.normal(size=(3, 5))[labels] * 3 + rng.normal(size=(n, 5)), selection_curve=None,
    )
    features = pd.DataFrame({
        "customer_id": result.customer_ids, "recency_days": rng.integers(1, 300, n),
        "frequency": rng.integers(1, 12, n), "monetary": rng.lognormal(4, 1, n) * (1 + labels),
        "avg_order_value": rng.uniform(5, 60, n), "return_rate": rng.uniform(0, 0.3, n),
        "r_score": rng.integers(1, 6, n), "f_score": rng.integers(1, 6, n),
        "m_score": rng.integers(1, 6, n),
        "segment": np.array(["loyal_customers", "promising", "cant_lose"])[labels],
    })
    personas = build_personas(result, features)
    chart_pngs = {
        "pipeline/rfm_distributions": charts.rfm_distributions(features),
        "fuzzy_cmeans/dashboard": charts.cluster_dashboard(result, features, personas),
        "fuzzy_cmeans/membership": charts.membership_histogram(result),
    }
    comparison = {"methods": [{"method": "fuzzy_cmeans", "silhouette": 0.4}]}
    html_text = build_report(comparison, {"fuzzy_cmeans": personas}, chart_pngs,
                             {"Profile": "profiles/fuzzy_cmeans.json"}, recommended="fuzzy_cmeans")
    directory = tmp_path_factory.mktemp("browser")
    path = write_report(html_text, directory / "report.html")
    return path, chart_pngs, personas


def test_every_image_decodes_at_its_png_size(written_report, tmp_path):
    path, chart_pngs, personas = written_report
    html_text = path.read_text(encoding="utf-8")
    images, dom = rendered_images(html_text, tmp_path)
    assert images == {
        name: (*charts.png_size(png), 255) for name, png in chart_pngs.items()
    }
    assert report_references(dom)["personas"] == [
        p["persona_name"] for p in sorted(personas["personas"], key=lambda p: p["rank"])
    ]


def test_probe_catches_broken_and_external_images(written_report, tmp_path):
    path, chart_pngs, _ = written_report
    good = charts.data_uri(chart_pngs["fuzzy_cmeans/membership"])
    truncated = good[: len(good) // 2]
    truncated = truncated[: len(truncated) // 4 * 4]  # still valid base64, PNG cut short
    injected = (
        f'<img alt="garbage" src="data:image/png;base64,iVBORw0KGgoAAAAA">'
        f'<img alt="truncated" src="{truncated}">'
        f'<img alt="network" src="https://example.org/chart.png">'
    )
    html_text = path.read_text(encoding="utf-8").replace("</main>", injected + "</main>")
    images, _ = rendered_images(html_text, tmp_path)
    assert images["garbage"][0] == 0
    assert images["network"][0] == 0
    assert images["truncated"][:2] == charts.png_size(chart_pngs["fuzzy_cmeans/membership"])
    assert images["truncated"][2] != 255
    assert images["fuzzy_cmeans/membership"][2] == 255
