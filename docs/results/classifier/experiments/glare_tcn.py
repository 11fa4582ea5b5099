"""The glare loop's retraining without the services: how a candidate's TCN learns a new class.

Runs `classifier.retrain`'s stages on the labels `bench/glare_loop.py --save-labels FILE`
wrote (the same labels a loop's training run gathers), with the ICN trained once (or taken
from a candidate checkpoint) and the TCN trained once per variant, and prints each variant's
figures on the promotion's fixed synthetic evaluation set: real tracklets lost and gained
against the base, glare tracklets (every stamp GLARE) passing, any bogus tracklet with a glare
stamp passing, and the threshold.

    SECRET_KEY=x .venv/bin/python docs/results/classifier/experiments/glare_tcn.py \\
        --labels ~/.cache/screening/glare-labels-seed2.pkl --night var/bench/glare-25-6000-0.2-0.12

A few minutes a variant on 2 cores (the ICN stage about two more, once: its result is kept as
~/.cache/screening/icn-<labels file's name>.pt, and the night's stamps as <bundle name>.npz
beside it; delete them to start again).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))


def night_arrays(folder: Path, cache: Path):
    """(pixels (N, 100, 100), lengths, meta (N, 7), real (T,), glare band (T,)) of a night
    bundle, read once and kept in `cache` (an npz)."""
    import json
    from collections import Counter

    import numpy as np

    if cache.exists():
        with np.load(cache) as kept:
            return tuple(kept[k] for k in ("pixels", "lengths", "meta", "real", "band"))
    from classifier.features import META_COLUMNS
    from classifier.stamp_io import fit_to_input, read_stamp

    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    truth = {
        r["tracklet"]: r
        for r in (json.loads(line) for line in (folder / "truth.jsonl").read_text().splitlines())
    }
    order = list(dict.fromkeys(r["tracklet"] for r in rows))
    pixels = np.stack(
        [fit_to_input(read_stamp((folder / r["stamp"]).read_bytes()).pixels) for r in rows]
    ).astype(np.float32)
    meta = np.array([[r.get(k, np.nan) for k in META_COLUMNS] for r in rows], np.float64)
    counts = Counter(r["tracklet"] for r in rows)
    lengths = np.array([counts[t] for t in order])
    real = np.array([truth[t]["real"] for t in order])
    band = np.array(
        [
            not truth[t]["real"] and truth[t]["latents"].get("correlated_kind") == "glare"
            for t in order
        ]
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, pixels=pixels, lengths=lengths, meta=meta, real=real, band=band)
    return pixels, lengths, meta, real, band


def main() -> None:
    from classifier.train import BATCH_NORM_MODES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=ROOT / "models/screening-43028b2fba09ca58.pt")
    parser.add_argument("--icn-from", type=Path, help="a candidate whose ICN is used as it is")
    parser.add_argument("--mode", default="new-inputs", choices=["new-inputs", "full"])

    parser.add_argument(
        "--input", nargs="+", default=["share", "detection"], choices=["share", "detection"]
    )
    parser.add_argument(
        "--share", nargs="+", default=["second"], choices=["mean", "mean-but-top", "second"],
        help="how the share input is taken (each a variant)",
    )  # fmt: skip
    parser.add_argument(
        "--icn-learns-from", default="", choices=["", "layer1", "layer2", "layer3", "layer4"],
        help="fine-tune only this ResNet block and those after it (and the output layer); "
        "the blocks before keep their weights and BatchNorm statistics; '' every weight "
        "(the retraining's default)",
    )  # fmt: skip
    parser.add_argument(
        "--icn-batch-norm", default="learn", choices=BATCH_NORM_MODES,
        help="the ICN's BatchNorm through the fine-tuning: its statistics learnt from the "
        "batches (the retraining's default until stop 49) or the base's kept (its default since)",
    )  # fmt: skip
    parser.add_argument(
        "--tcn-lr", type=float, help="the TCN's learning rate (the retraining's default if not)"
    )
    parser.add_argument("--tcn-epochs", type=int, help="the TCN's epochs (the retraining's: 40)")
    parser.add_argument("--cache", type=Path, default=ROOT / "var/cache/evaluation")
    parser.add_argument(
        "--night", type=Path, help="a measurement night's bundle (var/bench/glare-25-6000-...)"
    )
    args = parser.parse_args()

    import numpy as np
    import torch

    from classifier.checkpoint import checkpoint_payload, load_checkpoint
    from classifier.inference import Runtime, model_from_checkpoint
    from classifier.networks import IcnConfig
    from classifier.retrain import (
        RetrainConfig,
        _choose_threshold,
        _icn_stage,
        _set_tcn_stage,
        _split,
        synthetic_evaluation,
        tcn_sets,
    )

    labels = pickle.loads(args.labels.read_bytes())
    cfg = RetrainConfig(
        cache_dir=str(args.cache), device="cpu", tcn_mode=args.mode, tcn_lr=args.tcn_lr,
        icn_learns_from=args.icn_learns_from, icn_batch_norm=args.icn_batch_norm,
        **({"tcn_epochs": args.tcn_epochs} if args.tcn_epochs else {}),
    )  # fmt: skip
    learns_from = f"-from-{args.icn_learns_from}" if args.icn_learns_from else ""
    learns_from += "-bn-kept" if args.icn_batch_norm == "kept" else ""
    icn_name = f"icn-{args.labels.stem}{learns_from}.pt"
    payload = load_checkpoint(args.base)
    base_model = model_from_checkpoint(payload, Runtime.for_device("cpu"))
    base_classes = tuple(base_model.classes)
    new = tuple(
        dict.fromkeys(s.stamp_class for s in labels.stamps if s.stamp_class not in base_classes)
    )
    classes = base_classes + new
    stamps_train, stamps_held = _split(labels.stamps, cfg.holdout_fraction)
    tracklets_train, _ = _split(labels.tracklets, cfg.holdout_fraction)
    print(f"labels: {len(labels.stamps)} stamps, {len(labels.tracklets)} tracklets; new {new}")

    t0 = time.time()
    if args.icn_from:
        icn = model_from_checkpoint(load_checkpoint(args.icn_from)).icn
        print(f"ICN of {args.icn_from.name}")
    elif (kept_icn := Path.home() / ".cache/screening" / icn_name).exists():
        icn = torch.load(kept_icn, weights_only=False)
        print(f"ICN kept in {kept_icn}")
    else:
        base = model_from_checkpoint(payload)
        icn, _ = _icn_stage(
            base, base_model, new, stamps_train, stamps_held, tracklets_train, cfg,
            device="cpu", report=lambda *a, **k: None, started=t0,
        )  # fmt: skip
        print(f"ICN trained in {time.time() - t0:.0f} s")
        torch.save(icn, kept_icn)
    synthetic, synthetic_val = tcn_sets(cfg, base_model.preprocessing, base_classes)
    night = None
    if args.night:
        night = night_arrays(
            args.night, Path.home() / ".cache/screening" / f"{args.night.name}.npz"
        )
        base_probs, base_night = base_model.exact().score(night[0], night[1], night[2])
        base_top = base_probs.argmax(1)  # each stamp's class by the base
        base_kept = night[3] & (base_night >= base_model.threshold)
        print(
            f"night {args.night.name}: base keeps {base_kept.sum()} of {night[3].sum()} real, "
            f"glare tracklets passing {(base_night[night[4]] >= base_model.threshold).mean():.2%}"
            f" of {night[4].sum()}"
        )
    variants = [(i, s) for i in args.input for s in (args.share if i == "share" else ["-"])]
    for new_input, statistic in variants:
        t0 = time.time()
        variant = replace(cfg, new_class_input=new_input)
        if new_input == "share":
            variant = replace(variant, share_statistic=statistic)
            new_input = f"share {statistic}"
        base = model_from_checkpoint(payload)
        stage = _set_tcn_stage(
            base, icn, classes, new, synthetic, synthetic_val, tracklets_train,
            variant, base_calibration=payload.get("calibration"), device="cpu", on_epoch=None,
        )  # fmt: skip
        threshold, validation = _choose_threshold(
            stage, base_model, payload.get("calibration"), synthetic_val, variant
        )
        candidate = model_from_checkpoint(
            checkpoint_payload(
                icn,
                IcnConfig(classes=classes),
                stage.model,
                stage.config,
                base_model.preprocessing,
                threshold,
                {},
                {},
                half=True,
                calibration=stage.calibration,
            )
        )
        figures = synthetic_evaluation(
            {"candidate": candidate, "base": base_model},
            cfg.eval_real,
            cfg.eval_bogus,
            planet_bogus=cfg.eval_planet,
            cache_dir=args.cache,
        )
        mine = figures["candidate"]
        band = mine["by_bogus_kind"].get("correlated-glare", {})
        paired = figures["paired_real"]
        print(
            f"{new_input} ({args.mode}): threshold {threshold:.4f} (drift "
            f"{validation['drift_margin']['logit']:.2f}); real kept {paired['candidate_kept']} "
            f"(base {paired['base_kept']}; {paired['lost']} lost, {paired['gained']} gained); "
            f"glare tracklets passing {1 - band.get('rejection_at_threshold', float('nan')):.2%} "
            f"of {band.get('tracklets')}; with a glare stamp "
            f"{mine['passing_by_class']['GLARE']['passing']:.2%}; bogus rejected "
            f"{mine['at_model_threshold']['bogus_rejection']:.2%} [{time.time() - t0:.0f} s]",
            flush=True,
        )
        if night is not None:
            probs, scores = candidate.exact().score(night[0], night[1], night[2])
            kept = night[3] & (scores >= threshold)
            owner = np.repeat(np.arange(len(night[1])), night[1])
            top = probs.argmax(1) == classes.index(new[0])
            real_stamps = night[3][owner]
            moved = (probs.argmax(1) != base_top) & ~top & real_stamps
            print(
                f"    night real stamps whose top old class changed: {moved.sum()} of "
                f"{real_stamps.sum()} ({moved.sum() / real_stamps.sum():.2%})"
            )
            print(
                f"    night stamps read {new[0]}: real {top[night[3][owner]].mean():.2%} of "
                f"{night[3][owner].sum()}, of glare tracklets {top[night[4][owner]].mean():.2%}"
            )
            print(
                f"    night: real kept {kept.sum()} of {night[3].sum()} "
                f"({(base_kept & ~kept).sum()} lost, {(kept & ~base_kept).sum()} gained), "
                "glare tracklets passing "
                f"{(scores[night[4]] >= threshold).mean():.2%}",
                flush=True,
            )
            starts = np.concatenate([[0], np.cumsum(night[1])[:-1]])
            glare = classes.index(new[0])
            for i in np.flatnonzero(base_kept & ~kept):
                stamps = probs[starts[i] : starts[i] + night[1][i], glare]
                print(f"    lost #{i}: score {scores[i]:.3f}, {new[0]} {np.round(stamps, 2)}")


if __name__ == "__main__":
    main()
