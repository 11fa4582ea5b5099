"""The demo preset's retraining on the demo's own labels, with and without the bright replay
(`RetrainConfig.replay_bright_per_class`): of the planet-glare night's unjudged real tracklets
the base keeps, how many each candidate loses, and the night's glare tracklets it passes.

Run in a clone after `./run demo` and `bench/glare_demo_browser.py` (which gives the labels),
with the demo stopped:

    eval "$(.venv/bin/python -m screening.ops.demo_env $(pwd)/var)"
    DJANGO_SETTINGS_MODULE=screening.settings .venv/bin/python \\
        docs/results/classifier/experiments/demo_bright_ab.py 0,1      # the seeds
    ... demo_bright_ab.py 0,1 replay_per_class=60,120     # another field of the preset

Each retraining takes about 2.5 minutes on the VM; nothing is registered. Each line also gives
the real tracklets of the fixed synthetic set the candidate loses and gains against the base
(what the promotion rule reads).
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def night_tracklets(date: str, truth: dict) -> tuple[np.ndarray, np.ndarray, list, np.ndarray]:
    """The night's unjudged tracklets: stamps, metadata, lengths and their kind by the truth."""
    from screening.models import Detection, Night, Tracklet
    from screening.tracklet_files import read_pixels

    night = Night.objects.get(date=date)
    stamps, meta, lengths, kinds = [], [], [], []
    for t in Tracklet.objects.filter(night=night).exclude(status="reviewed"):
        detections = list(Detection.objects.filter(tracklet=t).order_by("index"))
        stamps.extend(read_pixels(t.pixels))
        for d in detections:
            mag = d.mag if d.mag is not None else np.nan
            fwhm = d.fwhm_px if d.fwhm_px is not None else np.nan
            meta.append([d.mjd, d.ra, d.dec, mag, d.x, d.y, fwhm])
        lengths.append(len(detections))
        row = truth[t.survey_id]
        glare = row["latents"].get("correlated_kind") == "glare"
        kinds.append("real" if row["real"] else "glare" if glare else "bogus")
    return np.stack(stamps).astype(np.float32), np.array(meta, float), lengths, np.array(kinds)


def main() -> None:
    import django

    django.setup()
    from classifier.inference import load_model
    from classifier.retrain import retrain
    from screening.models import ModelVersion
    from screening.registry.checkpoints import checkpoint_local
    from screening.registry.training import labels_gather, training_config

    folder = next(Path("var").glob("demo-night-*-planets*"))
    date = re.match(r"demo-night-(\d{4}-\d\d-\d\d)-", folder.name).group(1)
    rows = (folder / "truth.jsonl").read_text().splitlines()
    truth = {r["tracklet"]: r for r in map(json.loads, rows)}
    base_path = checkpoint_local(ModelVersion.objects.order_by("id").first())
    labels = labels_gather()
    stamps, meta, lengths, kinds = night_tracklets(date, truth)
    real, glare = kinds == "real", kinds == "glare"
    base = load_model(base_path, device="cpu")
    kept = base.assess(stamps, lengths, meta).scores >= base.threshold
    print(
        f"night {date}: {len(lengths)} unjudged, real {real.sum()}, glare {glare.sum()}; "
        f"base keeps {kept[real].sum()} real, passes {kept[glare].mean():.3f} glare",
        flush=True,
    )
    field, values = (sys.argv[2] if len(sys.argv) > 2 else "replay_bright_per_class=20,0").split(
        "="
    )
    for seed in [int(s) for s in sys.argv[1].split(",")]:
        for value in [int(v) for v in values.split(",")]:
            cfg = replace(training_config(), **{field: value}, seed=seed)
            started = time.time()
            with tempfile.TemporaryDirectory() as out:
                path, report = retrain(
                    base_path, labels, Path(out), cfg, progress=lambda *a, **k: None
                )
                candidate = load_model(path, device="cpu")
                passes = candidate.assess(stamps, lengths, meta).scores >= candidate.threshold
            lost = (kept & ~passes)[real].sum()
            paired = found(report, "paired_real") or {}
            print(
                f"seed {seed} {field} {value}: threshold {candidate.threshold:.4f}, real lost "
                f"{lost} of {kept[real].sum()}, glare passing {passes[glare].mean():.3f}; "
                f"fixed set: {paired.get('lost')} lost, {paired.get('gained')} gained; "
                f"{time.time() - started:.0f} s",
                flush=True,
            )


def found(tree, key: str):
    """The first value of `key` anywhere in a nested report."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            hit = found(item, key)
            if hit is not None:
                return hit
    return None


if __name__ == "__main__":
    main()
