"""The command line: python -m classifier {simulate-night,montage,train,evaluate,threshold}."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from classifier.classes import ALL_CLASSES, PAPER_CLASSES

EVAL_SEED = 20261124  # never used to train the baseline


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        help="torch device: cpu, cuda, cuda:1, or auto (cuda when available)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes simulating data in parallel (default: all CPU cores)",
    )


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classifier",
        description="Simulate survey stamps and tracklets, train and evaluate the ICN+TCN model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate-night", help="write a simulated night as a night bundle")
    p.add_argument("--out", type=Path, required=True, help="bundle directory to write")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same night")
    p.add_argument("--night", default="2026-11-24", help="night date, YYYY-MM-DD")
    p.add_argument("--tracklets", type=int, default=200, help="number of unknown tracklets")
    p.add_argument(
        "--real-fraction",
        type=float,
        default=0.02,
        help="fraction of real tracklets (the paper's nights: about 0.02)",
    )
    p.add_argument(
        "--planet-fraction",
        type=float,
        default=0.0,
        help="share of tracklets in fields near a bright planet, where most bogus "
        "tracklets are its glare (elsewhere there is none); say 0.2 for a glare night",
    )
    p.add_argument("--gzip", action="store_true", help="write stamps as .fits.gz")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes simulating in parallel (default: all CPU cores)",
    )
    p.add_argument(
        "--keep-images",
        action="store_true",
        help="also write science and reference stamps under images/",
    )

    p = sub.add_parser("montage", help="write a PNG of every class over SNR bins")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("docs/results/classifier/montage.png"),
        help="PNG path to write",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--per-bin", type=int, default=2, help="stamps per SNR bin and class")

    p = sub.add_parser("train", help="simulate training data from a seed, train ICN and TCN")
    p.add_argument("--seed", type=int, default=1, help="seed of all training data and weights")
    p.add_argument(
        "--preset",
        choices=["paper", "default", "metadata", "robust"],
        default="metadata",
        help="metadata (the shipped baseline): 20,000 domain-randomised stamps a "
        "class, 6 epochs, set TCN with motion and magnitude cues, calibrated; "
        "robust: metadata on the wider simulator (seeing 1.0-5.5 px, 15%% of stamps cut "
        "smaller than the input as other surveys send them); "
        "paper: Adam lr 0.01, batch 15, TCN MSE+SGD batch 1; default: the "
        "first baseline's recipe (470 stamps a class, 12 epochs)",
    )
    p.add_argument(
        "--stamp-cache",
        type=Path,
        default=Path("var/cache/stamps"),
        help="where the ICN's simulated stamps are kept between runs",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path.home() / ".cache" / "screening" / "train",
        help="where the ICN's training state is saved after every epoch, so that "
        "a stopped run resumes and a finished one is reused",
    )
    p.add_argument(
        "--tcn-kind",
        choices=["mlp4", "set"],
        default=None,
        help="TCN: mlp4 (the paper's, ICN scores of 4 detections) or set (every "
        "detection, with motion and magnitude cues); default: the preset's",
    )
    p.add_argument(
        "--cues",
        type=int,
        choices=[1, 2, 3, 4, 5, 6],
        default=None,
        help="the set TCN's cue set (classifier.features.CUES: 2 adds the physical invariants, "
        "3 the source's width over the exposure's seeing and the seeing, 4 the width alone, "
        "5 is 3 with the SNR, errors and fit chi^2 of a matched filter at the seeing, in the "
        "filtered stamp's own (correlated) noise, 6 is 5 with the chi^2 of a fit weighted by "
        "those errors); default: the preset's",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("var/models"),
        help="directory for the hash-named checkpoint (retrained models stay "
        "out of git; only the baseline lives in models/)",
    )
    p.add_argument(
        "--with-glare",
        action="store_true",
        help="train with the GLARE class too (the baseline is trained without)",
    )
    p.add_argument(
        "--per-class",
        type=int,
        default=None,
        help="training stamps per class (preset: 470; validation adds 30)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum ICN epochs (preset: 12); 0 with --init-icn: keep that ICN as it is and "
        "train the TCN only",
    )
    p.add_argument(
        "--init-icn",
        type=Path,
        default=None,
        help="fine-tune this checkpoint's ICN instead of training one from scratch",
    )
    p.add_argument("--icn-lr", type=float, default=None, help="the ICN's peak learning rate")
    p.add_argument(
        "--tcn-tracklets",
        type=int,
        default=None,
        help="real and bogus TCN training tracklets, each (preset: 1200)",
    )
    p.add_argument(
        "--tcn-mixed",
        type=int,
        default=None,
        help="extra mixed linkages (a mover's detections linked with bogus ones or another "
        "mover's) among the TCN's training tracklets: the simulator draws them as 2%% of bogus "
        "tracklets (preset: 0)",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="TCN threshold stored in the model (ignored with --target-recall)",
    )
    p.add_argument(
        "--target-recall",
        type=float,
        default=None,
        help="choose the threshold reaching this real recall on the TCN "
        "validation split, e.g. 0.996",
    )
    p.add_argument(
        "--curated-snr-slope",
        type=float,
        default=None,
        help="SNR law slope of the ICN's per-class stamps only (default: the "
        "simulator's 2.5; 1.0 = log-uniform, more bright examples)",
    )
    p.add_argument(
        "--preprocessing",
        choices=["equalize", "asinh_sigma"],
        default=None,
        help="preprocessing stored with the model (default: asinh_sigma, which "
        "keeps brightness against the noise, for the metadata preset; the "
        "paper's equalize for the others)",
    )
    p.add_argument(
        "--seeing",
        type=float,
        default=0.0,
        help="shrink stamps taken under seeing broader than this FWHM (px) to it before the "
        "ICN reads them, a physical invariant (default 0: never; asinh_sigma only)",
    )
    p.add_argument(
        "--full-precision",
        action="store_true",
        help="store float32 weights (default: float16, half the size)",
    )
    _add_device(p)

    p = sub.add_parser("evaluate", help="evaluate a model on simulated tracklets (JSON + PNG)")
    p.add_argument(
        "--model",
        type=Path,
        required=True,
        nargs="+",
        help="checkpoint file(s); several are evaluated on the same tracklets",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=EVAL_SEED,
        help="evaluation seed (default: one never used for training)",
    )
    p.add_argument("--real", type=int, default=10000, help="real tracklets")
    p.add_argument("--bogus", type=int, default=10000, help="bogus tracklets")
    p.add_argument(
        "--glare",
        choices=["without", "with", "both"],
        default="both",
        help="GLARE in the bogus mix: without (the paper's world), with, or both",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("docs/results/classifier"),
        help="directory for the JSON report and the PNG plots",
    )
    _add_device(p)

    p = sub.add_parser(
        "threshold", help="choose the threshold for a target real recall; writes a new model"
    )
    p.add_argument("--model", type=Path, required=True, help="checkpoint file")
    p.add_argument("--target-recall", type=float, default=0.996, help="real recall to reach")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the validation tracklets (default: the model's training seed)",
    )
    p.add_argument("--real", type=int, default=2000, help="real validation tracklets")
    p.add_argument("--bogus", type=int, default=2000, help="bogus validation tracklets")
    p.add_argument(
        "--ranges",
        choices=("nominal", "training"),
        default="nominal",
        help="simulator ranges of the validation tracklets: the nominal survey's (default), or "
        "the ranges the model was trained on (its recipe's; for the robust recipe the wider "
        "simulator, so the recall holds over every condition it was made for)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("var/models"),
        help="directory for the new hash-named checkpoint",
    )
    _add_device(p)

    p = sub.add_parser(
        "novelty",
        help="measure where a model's training data lies; writes <checkpoint>.novelty.npz",
        description=(
            "Simulates tracklets of the model's training distribution, runs its ICN on their "
            "stamps and keeps the class means and covariance of its features, the distance "
            "limit of a held-out part and the range of every tracklet cue, beside the "
            "checkpoint. Workers then keep a tracklet unlike that data in the to-review queue "
            "whatever its score (classifier.novelty)."
        ),
    )
    p.add_argument("--model", type=Path, required=True, help="checkpoint file")
    p.add_argument("--seed", type=int, default=None, help="seed of the simulated tracklets")
    p.add_argument("--tracklets", type=int, default=None, help="real tracklets, and as many bogus")
    p.add_argument(
        "--stamp-cache",
        type=Path,
        default=None,
        help="keep the simulated tracklets here and reuse them (say var/cache/stamps)",
    )
    _add_device(p)
    return parser


def cmd_simulate_night(args: argparse.Namespace) -> None:
    from classifier.bundle import simulate_night

    manifest = simulate_night(
        args.out,
        seed=args.seed,
        night=args.night,
        n_tracklets=args.tracklets,
        real_fraction=args.real_fraction,
        planet_fraction=args.planet_fraction,
        gz=args.gzip,
        keep_images=args.keep_images,
        workers=args.workers,
    )
    print(manifest)


def cmd_montage(args: argparse.Namespace) -> None:
    from classifier.montage import write_montage

    print(write_montage(args.out, seed=args.seed, per_bin=args.per_bin))


def cmd_train(args: argparse.Namespace) -> None:
    from classifier.preprocess import Preprocessing
    from classifier.train import train_model

    icn, tcn = {}, {}
    if args.per_class is not None:
        icn["n_train"] = args.per_class
    if args.epochs is not None:
        icn["max_epochs"] = args.epochs
    if args.init_icn is not None:
        icn["init_from"] = str(args.init_icn)
    if args.icn_lr is not None:
        icn["lr"] = args.icn_lr
    if args.tcn_tracklets is not None:
        tcn["n_real"] = tcn["n_bogus"] = args.tcn_tracklets
    if args.tcn_mixed is not None:
        tcn["n_mixed"] = args.tcn_mixed
    if args.cues is not None:
        tcn["cues"] = args.cues
    if args.tcn_kind is not None:
        tcn["kind"] = args.tcn_kind
        tcn["calibrate"] = args.tcn_kind == "set"
    preprocessing = args.preprocessing or (
        "asinh_sigma" if args.preset in ("metadata", "robust") else "equalize"
    )
    classes = ALL_CLASSES if args.with_glare else PAPER_CLASSES
    t0 = time.time()
    path, payload = train_model(
        seed=args.seed,
        preset=args.preset,
        out_dir=args.out_dir,
        classes=classes,
        device=args.device,
        workers=args.workers,
        half=not args.full_precision,
        threshold=args.threshold,
        target_recall=args.target_recall,
        icn_overrides=icn,
        tcn_overrides=tcn,
        curated_snr_slope=args.curated_snr_slope,
        pre=Preprocessing(preprocessing, seeing=args.seeing),
        stamp_cache=args.stamp_cache,
        state_dir=args.state_dir,
        command="python -m classifier " + shlex.join(sys.argv[1:]),
    )
    from classifier import novelty
    from classifier.inference import load_model

    reference = novelty.fit_reference(
        load_model(path, device=args.device), cache_dir=args.stamp_cache, workers=args.workers
    )
    reference.save(novelty.reference_path(path))
    val = payload["metrics"]["validation"]
    print(
        json.dumps(
            {
                "checkpoint": str(path),
                "seconds": round(time.time() - t0, 1),
                "timings": payload["training"]["timings"],
                "validation": val,
            },
            indent=1,
        )
    )


def _eval_sets(args: argparse.Namespace) -> list[tuple[str, bool]]:
    return {
        "without": [("without_glare", False)],
        "with": [("with_glare", True)],
        "both": [("without_glare", False), ("with_glare", True)],
    }[args.glare]


def cmd_evaluate(args: argparse.Namespace) -> None:
    from classifier.datasets import build_tracklet_set, write_build_report
    from classifier.evaluate import (
        evaluate_tracklets,
        format_confusion,
        summary_line,
        write_plots,
        write_report,
    )
    from classifier.inference import load_model

    models = [(path, load_model(path, args.device)) for path in args.model]
    presets = {m.preprocessing for _, m in models}
    if len(presets) > 1:
        raise SystemExit("models evaluated together must share their preprocessing preset")
    for set_name, glare in _eval_sets(args):
        t0 = time.time()
        tset = build_tracklet_set(
            args.seed,
            args.real,
            args.bogus,
            models[0][1].preprocessing,
            glare=glare,
            workers=args.workers,
        )
        simulated = time.time() - t0
        write_build_report(
            args.out / f"{set_name}_dataset.json", tset.params, tset.det_classes, tset.det_snr
        )
        for path, model in models:
            name = set_name if len(models) == 1 else f"{model.version}_{set_name}"
            t0 = time.time()
            report = evaluate_tracklets(model, tset)
            report["model"] = {
                "version": model.version,
                "path": str(path),
                "preset": model.training.get("preset"),
            }
            report["seconds"] = {"simulate": simulated, "score": time.time() - t0}
            write_report(report, args.out, name)
            write_plots(report, args.out, name)
            print(f"== {name} ({model.training.get('preset')}): {report['tracklets']}")
            print(summary_line(report))
            for kind, figures in report["by_bogus_kind"].items():
                print(
                    f"   {kind:>22}: n={figures['tracklets']:5d} rejected "
                    f"{100 * figures['rejection_at_threshold']:.1f}% at threshold, "
                    f"{100 * figures['rejection_at_paper_recall']:.1f}% at 99.6% recall"
                )
            print(format_confusion(report["icn_confusion"]))


def cmd_threshold(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from classifier import novelty
    from classifier.checkpoint import file_hash, load_checkpoint, save_checkpoint
    from classifier.datasets import build_tracklet_set
    from classifier.evaluate import score_set
    from classifier.inference import Runtime, model_from_checkpoint
    from classifier.metrics import operating_point, threshold_for_recall
    from classifier.train import TCN_VALIDATION_OFFSET, training_ranges

    payload = load_checkpoint(args.model)
    model = model_from_checkpoint(payload, Runtime.for_device(args.device))
    seed = args.seed if args.seed is not None else payload["training"]["seed"]
    cfg = training_ranges(payload) if args.ranges == "training" else None
    tset = build_tracklet_set(
        seed,
        args.real,
        args.bogus,
        model.preprocessing,
        glare="GLARE" in model.classes,
        first_index=TCN_VALIDATION_OFFSET,
        cfg=cfg,
        workers=args.workers,
    )
    _, scores = score_set(model, tset, motion_rule=False)
    threshold = threshold_for_recall(scores, tset.real, args.target_recall)
    payload.pop("version")
    payload.pop("format_version")
    payload["threshold"] = threshold
    payload["metrics"] = {
        **payload["metrics"],
        "threshold_choice": {
            "target_recall": args.target_recall,
            "seed": seed,
            "ranges": args.ranges,
            "real": args.real,
            "bogus": args.bogus,
            **operating_point(scores, tset.real, threshold),
        },
    }
    path = save_checkpoint(payload, args.out_dir)
    reference = novelty.load_reference(args.model, model.version)
    if reference is not None:  # the same networks: where its training data lies is unchanged
        version = file_hash(path)
        replace(reference, model_version=version).save(novelty.reference_path(path))
    print(path, json.dumps(payload["metrics"]["threshold_choice"]))


def cmd_novelty(args: argparse.Namespace) -> None:
    from classifier import novelty
    from classifier.inference import load_model

    model = load_model(args.model, device=args.device)
    options = {"workers": args.workers}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.tracklets is not None:
        options["n_tracklets"] = args.tracklets
    reference = novelty.fit_reference(model, cache_dir=args.stamp_cache, **options)
    path = reference.save(novelty.reference_path(args.model))
    print(path, f"stamp limit {reference.stamp_limit:.1f}", json.dumps(reference.made))


COMMANDS = {
    "simulate-night": cmd_simulate_night,
    "montage": cmd_montage,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "threshold": cmd_threshold,
    "novelty": cmd_novelty,
}


def main(argv: list[str] | None = None) -> None:
    args = get_args_parser().parse_args(argv)
    COMMANDS[args.command](args)
