"""report.html reads at 1,400 px without sideways scrolling: a full report of the embedded default
(every method x feature set in the comparison, personas and charts of every method) is opened in
headless Chromium with a 1,400 px window, and a probe script writes the document's scroll width into
the DOM that --dump-dom prints. Skipped when /usr/bin/chromium is absent."""

import os
import re
import subprocess

import pytest

from segmentation_pipeline import charts
from segmentation_pipeline.comparison import compare_methods, comparison_to_dict
from segmentation_pipeline.report import PAGE_WIDTH_PX, build_report
from segmentation_pipeline.retail.personas import build_personas
from segmentation_pipeline_tests.quality_data import embedded_features, runs

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason="chromium is not installed")
PROBE = """<script>
window.addEventListener('load', function () {
  var out = document.createElement('pre');
  out.id = 'width-probe';
  out.textContent = document.documentElement.scrollWidth + '|' + window.innerWidth;
  document.body.appendChild(out);
});
</script>"""


def page_width(html_text: str, directory) -> tuple[int, int]:
    """(document scroll width, window inner width) of the page in a PAGE_WIDTH_PX wide window."""
    page = directory / "report.html"
    page.write_text(html_text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", f"--user-data-dir={directory / 'profile'}",
        f"--window-size={PAGE_WIDTH_PX},1000", "--hide-scrollbars", "--virtual-time-budget=10000",
        "--dump-dom", page.as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    probe = re.search(r'<pre id="width-probe">(\d+)\|(\d+)</pre>', completed.stdout)
    assert probe, "the probe did not run: " + completed.stderr[-2000:]
    return int(probe.group(1)), int(probe.group(2))


@pytest.fixture(scope="module")
def full_report() -> str:
    features, results = embedded_features(), list(runs("embedded"))
    comparison = compare_methods(results)
    preferred = {r.method: r for r in results if r.feature_set == comparison.preferred_feature_sets[r.method]}
    personas = {method: build_personas(result, features) for method, result in preferred.items()}
    pngs = {"pipeline/method_comparison": charts.method_comparison_chart(comparison.table, comparison.recommended_run),
            "pipeline/selection_curves": charts.selection_curves(results)}
    for method, result in preferred.items():
        pngs[f"{method}/scatter"] = charts.cluster_scatter(result, personas[method])
        pngs[f"{method}/dashboard"] = charts.cluster_dashboard(result, features, personas[method])
    return build_report(comparison_to_dict(comparison), personas, pngs, {"Profile": "profiles/kmeans.json"},
                        recommended=comparison.recommended)


def test_full_report_has_no_sideways_scrolling_at_1400_px(full_report, tmp_path):
    width, window = page_width(full_report, tmp_path)
    assert window == PAGE_WIDTH_PX
    assert width <= PAGE_WIDTH_PX


def test_the_probe_sees_a_page_that_is_too_wide(full_report, tmp_path):
    wide = full_report.replace("</main>", '<div style="width: 3000px">wide</div></main>')
    assert page_width(wide, tmp_path)[0] > PAGE_WIDTH_PX
