"""Where a worker's scoring time goes, stage by stage, on simulated tracklets, in one process.

    .venv/bin/python bench/scoring_stages.py [--model models/screening-<hash>.pt]
        [--tracklets 300] [--repeats 3]

The stages of `ScreeningModel.assess` as the inference worker runs them (its runtime, threads
and precision on this machine), each timed alone on the same stamps, best of --repeats:
- cues: the per-stamp measurements (`classifier.features.stamp_cues`: moments, matched filter)
  stamp by stamp (chunks of 1, as before 2026-12-07) and in chunks of STAMP_CHUNK, side by
  side, with their largest difference; then all the cues (`batch_raw`: with each tracklet's
  motion fit and errors);
- preprocessing (`prepare_tensor`, with the exposures' seeing);
- the ICN in the workers' precision, and the whole of `assess`.
Prints milliseconds a stamp of each and its share of `assess`. Run it on a quiet machine; the
night benchmark (bench/night_end_to_end.py) is the end-to-end figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the workers run (screening/ops/workers.py)


def best_of(repeats: int, run) -> float:
    """The shortest wall time of `repeats` calls of `run`, after one call not timed."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="checkpoint (default: the newest under models/)")
    parser.add_argument("--tracklets", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from bench.scoring_core import checkpoint_path
    from classifier import features
    from classifier.hardware import cpu_summary
    from classifier.inference import Runtime, load_model, seeing_of
    from classifier.preprocess import prepare_tensor
    from classifier.tracklets import make_tracklet

    path = checkpoint_path(args.model)
    model = load_model(path, runtime=Runtime.for_device("cpu"))
    tracklets = [make_tracklet(4242, i, real=i % 3 == 0) for i in range(args.tracklets)]
    stamps = np.stack([d.stamp.difference for t in tracklets for d in t.detections]).astype(
        np.float32
    )
    lengths = [len(t.detections) for t in tracklets]
    meta = np.array(
        [[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for t in tracklets for d in t.detections]
    )
    n = len(stamps)
    filtered = model.needs_metadata and features.needs_filtered(model.tcn_config.cues)
    fwhm = meta[:, 6]  # NaN where not known (filter_sigma then reads the source's width)
    print(
        f"machine: {platform.node()}, {os.cpu_count()} cores ({cpu_summary()}); torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads; precision "
        f"{model.runtime.precision}"
    )
    print(f"model {path.name}; {n} stamps in {len(lengths)} tracklets; best of {args.repeats}")

    chunk = features.STAMP_CHUNK
    results = {}
    try:
        features.STAMP_CHUNK = 1
        one = features.stamp_cues(stamps, fwhm, filtered=filtered)
        results["cues, stamp by stamp"] = best_of(
            args.repeats, lambda: features.stamp_cues(stamps, fwhm, filtered=filtered)
        )
    finally:
        features.STAMP_CHUNK = chunk
    chunked = features.stamp_cues(stamps, fwhm, filtered=filtered)
    results[f"cues, {chunk} stamps at once"] = best_of(
        args.repeats, lambda: features.stamp_cues(stamps, fwhm, filtered=filtered)
    )
    results["cues in all (batch_raw, with the fits)"] = best_of(
        args.repeats, lambda: features.batch_raw(meta, stamps, lengths, filtered=filtered)
    )
    seeing = seeing_of(meta, n)

    def prepared() -> np.ndarray:
        """The ICN's images, in the workers' batches, as `assess` makes them."""
        with torch.inference_mode():
            return np.concatenate(
                [
                    prepare_tensor(
                        torch.from_numpy(stamps[s : s + model.runtime.batch_stamps]),
                        model.preprocessing,
                        fwhm=seeing[s : s + model.runtime.batch_stamps],
                    ).numpy()
                    for s in range(0, n, model.runtime.batch_stamps)
                ]
            )

    results["preprocessing"] = best_of(args.repeats, prepared)
    images = prepared()
    results[f"ICN ({model.runtime.precision})"] = best_of(
        args.repeats, lambda: model.stamp_probabilities(images)
    )
    total = best_of(args.repeats, lambda: model.assess(stamps, lengths, meta))
    difference = float(np.nanmax(np.abs(one - chunked))) if len(one) else 0.0
    print(f"{'stage':40s} {'ms a stamp':>10s} {'share of assess':>16s}")
    for name, seconds in results.items():
        print(f"{name:40s} {seconds / n * 1e3:10.3f} {seconds / total:15.0%}")
    print(
        f"{'assess (everything)':40s} {total / n * 1e3:10.3f} {1:15.0%}  ({n / total:.0f} stamps/s)"
    )
    print(
        f"cues stamp by stamp / in chunks: "
        f"{results['cues, stamp by stamp'] / results[f'cues, {chunk} stamps at once']:.2f}x; "
        f"largest difference between them {difference:.1e}"
    )


if __name__ == "__main__":
    main()
