"""Which part of the new baseline gains what: old vs new ICN, the paper's TCN vs the metadata TCN.

Every variant sees the same tracklets: the TCNs are trained on the same simulated training
tracklets (seed 1, domain-randomised, as the shipped recipe), their threshold and calibration come
from the same validation split (seed 1, nominal ranges), and all are measured on the same
evaluation set (seed 20261124, never used in training, the paper's 8-class world without GLARE).
The shipped model itself is evaluated on that set too (full report and plots in
docs/results/classifier).

    python docs/results/classifier/experiments/ablation.py --old models/OLD.pt --new models/NEW.pt

Simulated sets are cached under var/cache/ablation (a rerun only trains and scores).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from classifier.calibration import calibrate_logits, fit_platt  # noqa: E402
from classifier.datasets import build_tracklet_set, write_build_report  # noqa: E402
from classifier.evaluate import (  # noqa: E402
    evaluate_tracklets,
    format_confusion,
    summary_line,
    tracklet_figures,
    write_plots,
    write_report,
)
from classifier.features import N_DETECTION_INPUTS, N_TRACKLET_INPUTS  # noqa: E402
from classifier.inference import load_model  # noqa: E402
from classifier.metrics import threshold_for_recall  # noqa: E402
from classifier.networks import TcnConfig, tcn_inputs  # noqa: E402
from classifier.simulate import SimConfig  # noqa: E402
from classifier.train import (  # noqa: E402
    PRESETS,
    TCN_VALIDATION_OFFSET,
    SetInputs,
    predict_set_tcn,
    predict_tcn,
    train_set_tcn,
    train_tcn,
)

EVAL_SEED = 20261124


def cached_sets(name: str, build, cache: Path):
    path = cache / f"{name}.pkl"
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    sets = build()
    cache.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".tmp"), "wb") as fh:
        pickle.dump(sets, fh, protocol=5)
    path.with_suffix(".tmp").replace(path)
    return sets


def logits_of(kind: str, tcn, probs: np.ndarray, tset) -> np.ndarray:
    if kind == "set":
        return predict_set_tcn(
            tcn, SetInputs(probs, tset.det_inputs(), tset.trk_inputs(), tset.lengths), "cpu"
        )
    scores = predict_tcn(tcn, tcn_inputs(probs, tset.lengths), "cpu")
    scores = np.clip(scores.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(scores / (1 - scores))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True, help="the first baseline (equalize)")
    p.add_argument("--new", type=Path, required=True, help="the new baseline (asinh_sigma)")
    p.add_argument("--real", type=int, default=10_000)
    p.add_argument("--bogus", type=int, default=10_000)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "classifier")
    p.add_argument("--cache", type=Path, default=ROOT / "var" / "cache" / "ablation")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument(
        "--shipped-only",
        action="store_true",
        help="only the shipped model's evaluation report (no ablation rows)",
    )
    p.add_argument(
        "--tcn-tracklets",
        type=int,
        default=None,
        help="real and bogus TCN training tracklets each (default: the recipe's)",
    )
    args = p.parse_args()

    old, new = load_model(args.old, "cpu"), load_model(args.new, "cpu")
    presets = (old.preprocessing, new.preprocessing)
    tcn_t = PRESETS["metadata"][1]
    if args.tcn_tracklets:
        n = args.tcn_tracklets
        tcn_t = replace(tcn_t, n_real=n, n_bogus=n, n_val_real=n, n_val_bogus=n, epochs=3)
    t0 = time.time()
    size = f"{tcn_t.n_real}-{tcn_t.n_val_real}"
    train = cached_sets(
        f"train-{size}",
        lambda: build_tracklet_set(
            1,
            tcn_t.n_real,
            tcn_t.n_bogus,
            presets,
            glare=False,
            cfg=SimConfig().widened(),
            workers=args.workers,
        ),
        args.cache,
    )
    val = cached_sets(
        f"val-{size}",
        lambda: build_tracklet_set(
            1,
            tcn_t.n_val_real,
            tcn_t.n_val_bogus,
            presets,
            glare=False,
            first_index=TCN_VALIDATION_OFFSET,
            workers=args.workers,
        ),
        args.cache,
    )
    test = cached_sets(
        f"eval-{args.real}-{args.bogus}",
        lambda: build_tracklet_set(
            EVAL_SEED, args.real, args.bogus, presets, glare=False, workers=args.workers
        ),
        args.cache,
    )
    simulated = time.time() - t0
    print(f"simulated (or loaded) the sets in {simulated:.0f} s", flush=True)

    # the shipped model on the evaluation set: the full report and its plots
    t0 = time.time()
    report = evaluate_tracklets(new, test[1])
    report["model"] = {"version": new.version, "path": str(args.new)}
    report["seconds"] = {"simulate": simulated, "score": time.time() - t0}
    write_report(report, args.out, "without_glare")
    write_plots(report, args.out, "without_glare")
    write_build_report(
        args.out / "without_glare_dataset.json",
        test[1].params,
        test[1].det_classes,
        test[1].det_snr,
    )
    print(summary_line(report))
    for kind, fig in report["by_bogus_kind"].items():
        print(
            f"   {kind:>28}: n={fig['tracklets']:5d} rejected "
            f"{100 * fig['rejection_at_threshold']:.2f}% at threshold"
        )
    print(format_confusion(report["icn_confusion"]))
    for key in ("real_recall_by_snr", "real_recall_by_rate"):
        print(key, json.dumps(report[key]))
    print("ECE", report["reliability"]["ece"], "ICN accuracy", report["icn_accuracy"])
    if args.shipped_only:
        return

    rows = []
    for icn_name, model, k in (("old ICN (first baseline)", old, 0), ("new ICN", new, 1)):
        probs = {
            name: model.stamp_probabilities(s[k].images)
            for name, s in (("train", train), ("val", val), ("test", test))
        }
        for kind in ("mlp4", "set"):
            t0 = time.time()
            y = train[k].real.astype(np.float32)
            if kind == "set":
                cfg = TcnConfig(
                    n_classes=len(model.classes),
                    kind="set",
                    n_detection_features=N_DETECTION_INPUTS,
                    n_tracklet_features=N_TRACKLET_INPUTS,
                )
                inputs = SetInputs(
                    probs["train"], train[k].det_inputs(), train[k].trk_inputs(), train[k].lengths
                )
                tcn = train_set_tcn(inputs, y, tcn_t, cfg, device="cpu", seed=1, progress=False)
            else:
                tcn = train_tcn(
                    tcn_inputs(probs["train"], train[k].lengths),
                    y,
                    replace(PRESETS["default"][1], n_real=tcn_t.n_real, n_bogus=tcn_t.n_bogus),
                    len(model.classes),
                    device="cpu",
                    seed=1,
                    progress=False,
                )
            val_logits = logits_of(kind, tcn, probs["val"], val[k])
            cal = fit_platt(val_logits, val[k].real)
            val_scores = calibrate_logits(val_logits, cal)
            threshold = threshold_for_recall(val_scores, val[k].real, 0.996)
            scores = calibrate_logits(logits_of(kind, tcn, probs["test"], test[k]), cal)
            fig = tracklet_figures(scores, probs["test"], test[k], model.classes, threshold)
            row = {
                "icn": icn_name,
                "tcn": "paper's (ICN scores of 4 detections)"
                if kind == "mlp4"
                else "metadata set model",
                "auc": fig["auc"],
                **fig["at_model_threshold"],
                "ece": fig["reliability"]["ece"],
                "icn_accuracy": fig["icn_accuracy"],
                "by_kind": {
                    k2: v["rejection_at_threshold"] for k2, v in fig["by_bogus_kind"].items()
                },
                "seconds": time.time() - t0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = args.out / "ablation.json"
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "tracklets": report["tracklets"],
                "old": str(args.old),
                "new": str(args.new),
            },
            indent=1,
        )
        + "\n"
    )
    lines = [
        "| ICN | TCN | AUC | real recall | bogus rejection | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['icn']} | {r['tcn']} | {r['auc']:.4f} | "
            f"{100 * r['real_recall']:.2f}% | {100 * r['bogus_rejection']:.2f}% | "
            f"{r['ece']:.3f} |"
        )
    (args.out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
