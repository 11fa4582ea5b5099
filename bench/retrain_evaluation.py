"""What a retraining run's comparison on the fixed synthetic evaluation set costs for its base
model: simulating the set (once a machine), scoring the base on it (what every run did), and
reading the base's kept scores (what a run does now, `classifier.retrain._scores_kept`).

Run: `.venv/bin/python bench/retrain_evaluation.py [--checkpoint PATH]` (default: the newest
model under models/). Its cache is a fresh temporary folder, so the first line simulates.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", help="model checkpoint (.pt)")
    args = parser.parse_args()

    from bench.scoring_core import checkpoint_path
    from classifier.inference import load_model
    from classifier.retrain import RetrainConfig, synthetic_evaluation

    cfg = RetrainConfig()
    path = checkpoint_path(args.checkpoint)
    base = load_model(path, device="cpu")
    cache = Path(tempfile.mkdtemp(prefix="bench-evaluation-"))
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores; model {path.name}; evaluation set "
        f"{cfg.eval_real} real, {cfg.eval_bogus} bogus, {cfg.eval_planet} near a planet"
    )

    def timed(what: str) -> None:
        started = time.perf_counter()
        synthetic_evaluation(
            {"base": base},
            cfg.eval_real,
            cfg.eval_bogus,
            planet_bogus=cfg.eval_planet,
            cache_dir=cache,
            workers=os.cpu_count() or 1,
        )
        print(f"{what:48s} {time.perf_counter() - started:7.1f} s")

    timed("simulate the set and score the base (once)")
    for kept in cache.glob("scores-*.npz"):
        kept.unlink()
    timed("score the base on the kept set (every run, before)")
    timed("read the base's kept scores (every run, now)")


if __name__ == "__main__":
    main()
