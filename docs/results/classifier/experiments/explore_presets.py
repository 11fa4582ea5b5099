"""One-off GPU experiment: which CPU-affordable ICN set-up helps the tracklet figures?"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from classifier.datasets import build_tracklet_set
from classifier.evaluate import evaluate_tracklets, summary_line
from classifier.inference import load_model
from classifier.preprocess import Preprocessing, centre_crop

OUT = Path(sys.argv[1])
CONFIGS = {
    "eq80_e12": (Preprocessing("equalize", crop=80), {}),
    "eq64_e12": (Preprocessing("equalize", crop=64), {}),
    "asinh80_e12": (Preprocessing("asinh_sigma", crop=80), {}),
    "eq80_e30": (Preprocessing("equalize", crop=80), {"max_epochs": 30, "patience": 30}),
}
results = {}
sets = {}
for name, (pre, icn) in CONFIGS.items():
    from classifier.train import train_model

    t0 = time.time()
    path, payload = train_model(
        seed=1,
        preset="default",
        out_dir=Path("/tmp/x") / name,
        device="cuda",
        target_recall=0.996,
        icn_overrides=icn,
        pre=pre,
        progress=False,
    )
    model = load_model(path, "cuda")
    if pre.name not in sets:
        sets[pre.name] = build_tracklet_set(
            20261124, 3000, 3000, Preprocessing(pre.name), glare=False, progress=False
        )
    tset = sets[pre.name]
    tset_c = type(tset)(**{**tset.__dict__, "images": centre_crop(tset.images, pre.crop)})
    report = evaluate_tracklets(model, tset_c)
    results[name] = {
        "seconds": time.time() - t0,
        "val": payload["metrics"]["validation"],
        "auc": report["auc"],
        "at_model_threshold": report["at_model_threshold"],
        "at_paper_recall": report["at_paper_recall"],
        "confusion": report["icn_confusion"],
    }
    print(
        name,
        round(time.time() - t0),
        "val acc",
        payload["metrics"]["validation"]["icn"],
        summary_line(report),
        flush=True,
    )
    (OUT / "explore.json").write_text(json.dumps(results, indent=1, default=float))
