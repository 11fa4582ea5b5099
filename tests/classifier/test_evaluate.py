"""Evaluation figures on a small known set."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier.datasets import build_tracklet_set
from classifier.evaluate import confusion, evaluate_tracklets, write_plots, write_report
from classifier.inference import load_model


def test_it_counts_true_against_predicted_classes() -> None:
    conf = confusion(["AST", "GLARE", "AST"], np.array([0, 1, 1]), ("AST", "NOISE"))
    assert conf["rows"] == ["AST", "GLARE"]
    assert conf["counts"] == [[1, 1], [0, 1]]


def test_it_writes_a_report_and_plots(tiny_model, tmp_path: Path) -> None:
    model = load_model(tiny_model[0])
    tset = build_tracklet_set(5, 6, 6, model.preprocessing, glare=True, workers=1, progress=False)
    report = evaluate_tracklets(model, tset)
    assert report["tracklets"] == {"real": 6, "bogus": 6, "stamps": len(tset.images)}
    assert 0.0 <= report["auc"] <= 1.0
    assert (
        report["at_paper_recall"]["real_recall"] >= 0.996 - 1e-9
        or report["at_paper_recall"]["real_recall"] == 1.0
    )
    assert sum(sum(r) for r in report["icn_confusion"]["counts"]) == len(tset.images)
    assert set(report["by_bogus_kind"]) <= {
        "independent",
        "mixed",
        "correlated-spike",
        "correlated-burn",
        "correlated-glare",
        "correlated-variable",
    }
    write_report(report, tmp_path, "x")
    paths = write_plots(report, tmp_path, "x")
    assert all(p.stat().st_size > 1000 for p in paths) and (tmp_path / "x.json").exists()
