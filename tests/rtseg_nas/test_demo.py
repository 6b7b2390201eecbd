"""The demo end to end at a toy size: every stage runs, the report is written, a rerun skips all."""

import json
import re

from rtseg_nas.pipeline import DemoConfig, run_demo

TOY = dict(
    data="synthetic:30", size=32, epochs=1, batch_size=8, trials=2, search_size=32, search_epochs=1,
    steps_per_epoch=2, top_k=1, finetune_epochs=0, profile_size=32, profile_runs=2, validate_top_k=1,
    validate_epochs=1, validate_size=32,
)  # fmt: skip


def test_demo_runs_every_stage_then_resumes(tmp_path):
    cfg = DemoConfig(out_dir=tmp_path / "demo", **TOY)
    first = run_demo(cfg, progress=False)
    assert first.report.is_file()
    assert not any(t["skipped"] for t in first.stages.values())
    html = first.report.read_text()
    assert "Reference: paper (fully trained)" in html
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 5  # + the validated figure
    compressed = sorted(p.parent.name for p in (tmp_path / "demo/study/compressed").glob("*/candidate.json"))
    assert len(compressed) == 2  # pruned, and pruned + INT8, of the best front member
    validated = sorted(p.parent.name for p in (tmp_path / "demo/study/validated").glob("*/candidate.json"))
    assert "paper" in validated and 'id="validated"' in html and "Basis: validated" in html
    assert set(compressed) <= set(validated)  # the variants' recipes were re-applied to the validated parent
    # two paired training seeds (the default), and the ship section's menu against paper
    summary = json.loads((tmp_path / "demo/study/validated/summary.json").read_text())
    assert summary["seeds"] == [0, 1] and 'id="ship-menu"' in html and "2 paired seeds" in html
    reference = json.loads((tmp_path / "demo/study/reference.json").read_text())
    assert {r["kind"] for r in reference["profiles"]} == {"measured", "estimated"}

    again = run_demo(cfg, progress=False)
    assert all(t["skipped"] for name, t in again.stages.items() if name != "report")
