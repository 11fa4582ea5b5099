"""`python -m classifier threshold`: the operating point chosen on the conditions a model was
trained for (`--ranges training`), not only on the nominal survey's."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier.checkpoint import load_checkpoint
from classifier.cli import main
from classifier.simulate import SimConfig
from classifier.train import training_ranges

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "models" / "screening-bf73f2326bcaa1d9.pt"  # the robust recipe
SECOND = ROOT / "models" / "previous" / "screening-43028b2fba09ca58.pt"  # the metadata recipe


def test_a_models_training_ranges_are_read_from_its_checkpoint() -> None:
    assert training_ranges(load_checkpoint(SHIPPED)) == SimConfig().wider()
    assert training_ranges(load_checkpoint(SECOND)) == SimConfig().widened()
    # the shipped threshold was chosen on those ranges, and says so
    choice = load_checkpoint(SHIPPED)["metrics"]["threshold_choice"]
    assert choice["ranges"] == "training" and choice["real"] == 10000
    assert choice["real_recall"] >= 0.996


def test_the_threshold_keeps_the_target_of_real_tracklets_drawn_from_the_training_ranges(
    tiny_metadata_model, tmp_path
) -> None:
    """The tiny model trained on widened ranges: its new threshold keeps at least 90% of the
    widened validation tracklets, and the new checkpoint records how it was chosen."""
    from classifier.datasets import build_tracklet_set
    from classifier.evaluate import score_set
    from classifier.inference import load_model
    from classifier.train import TCN_VALIDATION_OFFSET

    path, _ = tiny_metadata_model
    main(
        [
            "threshold",
            "--model",
            str(path),
            "--ranges",
            "training",
            "--target-recall",
            "0.9",
            "--real",
            "30",
            "--bogus",
            "10",
            "--out-dir",
            str(tmp_path),
            "--device",
            "cpu",
            "--workers",
            "1",
        ]
    )
    (written,) = tmp_path.glob("screening-*.pt")
    choice = load_checkpoint(written)["metrics"]["threshold_choice"]
    assert (choice["ranges"], choice["real"], choice["bogus"]) == ("training", 30, 10)
    model = load_model(written, "cpu")
    payload = load_checkpoint(path)
    tset = build_tracklet_set(
        payload["training"]["seed"],
        30,
        10,
        model.preprocessing,
        glare=False,
        first_index=TCN_VALIDATION_OFFSET,
        cfg=SimConfig().widened(),
        workers=1,
        progress=False,
    )
    _, scores = score_set(model, tset, motion_rule=False)
    assert np.mean(scores[tset.real] >= model.threshold) >= 0.9
