from __future__ import annotations

import base64
import csv
import json
from html.parser import HTMLParser

import pytest

from reports import PLOT_KEYS, build_report, compute_report

from .conftest import SETTINGS, write_study


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs: list[dict] = []
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "img":
            self.imgs.append(attrs)

    def handle_data(self, data):
        self.text.append(data)


def _parse(path):
    p = _Collect()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_report_of_the_tiny_study(tiny_study):
    path = build_report(tiny_study)
    out = tiny_study / "report"
    assert path == out / "report.html"

    # Every promised plot is written as PNG and SVG, and embedded once as a PNG data URI.
    for key in PLOT_KEYS:
        assert (out / f"{key}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{key}.svg").read_bytes()[:500]
    page = _parse(path)
    assert len(page.imgs) == len(PLOT_KEYS)
    for img, key in zip(page.imgs, PLOT_KEYS):
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1]) == (out / f"{key}.png").read_bytes()
    # Self-contained: nothing loaded from elsewhere, no scripts.
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe")
        for name in ("src", "href"):
            assert name not in attrs or attrs[name].startswith("data:"), (tag, attrs)
    html = path.read_text(encoding="utf-8")
    text = "".join(page.text)

    # Labels, legend and banner.
    assert 'id="synthetic-banner"' in html and "Accuracy on synthetic data" in text
    assert 'class="kind measured">MEASURED' in html and 'class="kind estimated">ESTIMATED' in html
    assert "ESTIMATED latency computed from a model" in text
    # Ship summary: the fastest eligible within one point of the best Dice (paper), said against paper.
    assert "Ship paper.int8: 28.00 ms per frame (35.7 FPS), Dice 0.8950" in text
    assert "within 1 Dice point (0.01) of the highest Dice; the highest Dice, paper (0.9000), is slower" in text
    assert "1.79x faster than paper (28.00 ms vs paper's 50.00 ms)" in text
    # Config collapsibles, environment, settings; study text escaped.
    assert html.count("<details>") == 7
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "Xeon &lt;2 cores&gt;" in html
    assert "&quot;sampler&quot;: &quot;nsga2&quot;" in html

    # Tables: the front over the study objectives, every candidate with its status.
    with open(out / "front.csv", newline="") as fh:
        front_rows = list(csv.DictReader(fh))
    assert [r["name"] for r in front_rows] == ["paper", "paper.int8", "trial-1", "trial-4"]
    with open(out / "candidates.csv", newline="") as fh:
        status = {r["name"]: r["status"] for r in csv.DictReader(fh)}
    assert status == {
        "paper": "front",
        "trial-1": "front",
        "trial-2": "dominated",
        "trial-3": "infeasible",
        "trial-4": "front",
        "trial-5": "incomplete",
        "paper.int8": "front",
    }
    md = (out / "front.md").read_text()
    assert md.count("\n| ") == 5 and "ESTIMATED" in md
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ship"]["best"] == "paper" and summary["front"] == [r["name"] for r in front_rows]
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())


def test_report_info_matches_the_files(tiny_study):
    info = compute_report(tiny_study)
    assert info.front.front_names == ("paper", "paper.int8", "trial-1", "trial-4")
    assert info.front.infeasible_names == ("trial-3",)
    assert info.synthetic
    assert info.plot_keys == PLOT_KEYS
    # History derived from the trials (no history.csv): trials 0..5, monotone, last = final front's volume.
    hv = info.hypervolume
    assert hv.numbers == (0, 1, 2, 3, 4, 5) and hv.source.startswith("trial candidates")
    assert hv.values[0] > 0 and all(b >= a for a, b in zip(hv.values, hv.values[1:]))


def test_empty_study_warns_and_still_builds(tmp_path, caplog):
    root = write_study(tmp_path / "empty", [], settings=SETTINGS)
    with caplog.at_level("WARNING"):
        path = build_report(root, tmp_path / "elsewhere")
    assert path == tmp_path / "elsewhere" / "report.html"
    assert any("no candidates" in r.getMessage() for r in caplog.records)
    page = _parse(path)
    assert len(page.imgs) == len(PLOT_KEYS)
    assert "No feasible candidate has every objective value." in " ".join(page.text)
    assert (tmp_path / "elsewhere" / "candidates.csv").read_text().startswith("name,")
    assert not (root / "report").exists()


def test_bad_objective_in_study_json_names_it(tmp_path):
    from rtseg_core import ConfigError

    from .conftest import cand

    root = write_study(tmp_path / "s", [cand("paper")], settings={**SETTINGS, "objectives": [["accuracy", "maximize"]]})
    with pytest.raises(ConfigError, match=r"study.json: 'objectives\[0\]' names an unknown objective.*'accuracy'"):
        build_report(root)
