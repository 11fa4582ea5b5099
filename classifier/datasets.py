"""Dataset builds: curated per-class stamp sets and tracklet sets, generated in parallel.

Every build is a pure function of its seed and sizes; `write_build_report` puts its parameters,
per-class counts and latent histograms beside it. numpy only (no torch).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from classifier.classes import ALL_CLASSES
from classifier.preprocess import Preprocessing, prepare
from classifier.simulate import STREAM_STAMPS, SimConfig, make_stamp, stamp_rng
from classifier.tracklets import PlanetField, make_tracklet

logger = logging.getLogger(__name__)

BOGUS_INDEX_OFFSET = 10_000_000  # bogus tracklet indices, so real and bogus never share a stream
PLANET_INDEX_OFFSET = 20_000_000  # bogus tracklets of a planet's field
MIXED_INDEX_OFFSET = 30_000_000  # extra mixed linkages (bogus kind "mixed" only)
SNR_EDGES = (4, 5, 6, 8, 12, 25, 60, 1e12)


@dataclass
class StampSet:
    """Prepared stamps (N, H, W) with integer labels into `classes` and per-stamp latents."""

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    latents: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TrackletSet:
    """Prepared stamps of consecutive tracklets, with truth per tracklet and per detection."""

    images: np.ndarray
    lengths: np.ndarray
    real: np.ndarray
    kinds: list[str]
    det_classes: list[str]
    det_snr: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)
    meta: np.ndarray | None = None  # (N, 7) per detection: features.META_COLUMNS
    det_raw: np.ndarray | None = None  # (N, len(DETECTION_FEATURES)) measured cues
    trk_raw: np.ndarray | None = None  # (T, len(TRACKLET_FEATURES))
    snr: np.ndarray | None = None  # (T,) a real mover's SNR (NaN for bogus)
    rate: np.ndarray | None = None  # (T,) true rate of a real mover, fitted rate of bogus

    def det_inputs(self, cues: int = 1) -> np.ndarray:
        from classifier.features import detection_inputs

        return detection_inputs(self.det_raw, cues)

    def trk_inputs(self, cues: int = 1) -> np.ndarray:
        from classifier.features import tracklet_inputs

        return tracklet_inputs(self.trk_raw, cues)

    @property
    def starts(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(int)


def _child_init() -> None:
    """A simulation child: torch single-threaded, and the default signal handlers back.

    A child forked from a Celery worker inherits the worker's SIGTERM handler (a warm shutdown
    of the parent's loop): the pool could then not stop its children, and the job hung.
    """
    import signal

    import torch

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    torch.set_num_threads(1)


def _pool_map(fn, jobs: list, workers: int, desc: str, progress: bool) -> Iterator[Any]:
    import multiprocessing

    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, disable=not progress)
    if workers > 1 and multiprocessing.current_process().daemon:
        # A daemonic process (a Celery prefork child) may not start children: work here, slower
        # but correct. The `training` worker (screening/ops/workers.py) runs the solo pool for this.
        logger.warning(
            "%s: in a daemonic process, simulating in one process instead of %d", desc, workers
        )
        workers = 1
    if workers <= 1:
        for job in jobs:
            yield fn(job)
            bar.update()
    else:
        # The caller may have run torch already (an inference worker, the training job): a
        # forked child then hangs in its first parallel torch operation (the preprocessing is
        # torch) unless it runs torch single-threaded, which each child does.
        with multiprocessing.get_context("fork").Pool(workers, initializer=_child_init) as pool:
            for result in pool.imap(fn, jobs):
                yield result
                bar.update()
            pool.close()  # every job is done: let the children exit on their own
            pool.join()
    bar.close()


def _stamp_job(job: tuple) -> tuple[np.ndarray, list[int], list[dict[str, Any]]]:
    seed, cls, label, indices, pre, crop, cfg = job
    class_index = ALL_CLASSES.index(cls)
    samples = [
        make_stamp(cls, stamp_rng(seed, STREAM_STAMPS, class_index, i), cfg) for i in indices
    ]
    raw = np.stack([s.difference for s in samples])
    fwhm = np.array([s.latents["conditions"]["fwhm"] for s in samples])
    images = prepare(raw, pre, crop=crop, fwhm=fwhm).astype(np.float16)
    latents = [
        {k: v for k, v in s.latents.items() if not isinstance(v, dict | list)} for s in samples
    ]
    return images, [label] * len(samples), latents


def build_stamp_set(
    seed: int,
    classes: tuple[str, ...],
    n_per_class: int,
    pre: Preprocessing,
    *,
    crop: bool = False,
    cfg: SimConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk: int = 50,
) -> StampSet:
    """n_per_class stamps of each class, prepared (uncropped by default, for augmentation)."""
    cfg = cfg or SimConfig()
    workers = workers or os.cpu_count() or 1
    jobs = [
        (seed, cls, label, list(range(s, min(s + chunk, n_per_class))), pre, crop, cfg)
        for label, cls in enumerate(classes)
        for s in range(0, n_per_class, chunk)
    ]
    images, labels, latents = [], [], []
    for im, lab, lat in _pool_map(_stamp_job, jobs, workers, "stamps", progress):
        images.append(im)
        labels += lab
        latents += lat
    return StampSet(
        np.concatenate(images), np.array(labels, dtype=np.int64), tuple(classes), latents
    )


# The source a cached build depends on: stamps on the stamp simulator and the preprocessing;
# tracklets on the tracklet simulator too and, for a TrackletSet's measured cues, features.py.
SIMULATOR_SOURCES = {
    "stamps": ("simulate.py", "render.py", "preprocess.py"),
    "tracklets": ("simulate.py", "render.py", "tracklets.py", "features.py", "preprocess.py"),
    "raw-tracklets": ("simulate.py", "render.py", "tracklets.py"),  # raw stamps and metadata
}


def simulator_code(of: str = "tracklets") -> str:
    """A hash of the source `of` ("stamps", "tracklets" or "raw-tracklets") depends on: a
    cached build made by other code is not reused, and one that other code would make the same
    is."""
    import hashlib

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in SIMULATOR_SOURCES[of]:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def stamp_cache_key(seed: int, classes: tuple[str, ...], pre: Preprocessing, cfg: SimConfig) -> str:
    """The name of a cached stamp build: a hash of everything the stamps depend on."""
    import hashlib

    text = json.dumps(
        {
            "seed": seed,
            "classes": list(classes),
            "pre": pre.to_dict(),
            "sim": cfg.to_dict(),
            "stream": STREAM_STAMPS,
            "code": simulator_code("stamps"),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_stamp_set(
    seed: int,
    classes: tuple[str, ...],
    n_per_class: int,
    pre: Preprocessing,
    cache_dir: Path,
    *,
    cfg: SimConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk: int = 500,
) -> StampSet:
    """`build_stamp_set` kept on disk in chunks: a stopped build resumes, a finished one loads.

    Stamps are prepared (uncropped) float16, one `.npy` per (class, chunk of `chunk` stamps)
    under ``cache_dir/<key>/``; `n_per_class` may grow later and only the new chunks are made.
    Index i of a class is always the same stamp, whatever n_per_class is.
    """
    cfg = cfg or SimConfig()
    root = Path(cache_dir) / stamp_cache_key(seed, classes, pre, cfg)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.json").write_text(
        json.dumps(
            {
                "seed": seed,
                "classes": list(classes),
                "preprocessing": pre.to_dict(),
                "simulator": cfg.to_dict(),
                "chunk": chunk,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    todo, paths = [], []
    for label, cls in enumerate(classes):
        for start in range(0, n_per_class, chunk):
            path = root / f"{cls}-{start:07d}-{chunk}.npy"
            paths.append((label, path, min(chunk, n_per_class - start)))
            if not path.exists():
                todo.append(
                    (seed, cls, label, list(range(start, start + chunk)), pre, False, cfg, path)
                )
    workers = workers or os.cpu_count() or 1
    for _ in _pool_map(_cached_stamp_job, todo, workers, "stamps", progress):
        pass
    n = sum(count for _, _, count in paths)
    images = np.empty((n, pre.size, pre.size), np.float16)
    labels = np.empty(n, np.int64)
    at = 0
    for label, path, count in paths:
        images[at : at + count] = np.load(path, mmap_mode="r")[:count]
        labels[at : at + count] = label
        at += count
    return StampSet(images, labels, tuple(classes), [])


def _cached_stamp_job(job: tuple) -> str:
    *stamp_job, path = job
    images, _, _ = _stamp_job(tuple(stamp_job))
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, images)
    tmp.replace(path)
    return str(path)


def _tracklet_job(job: tuple) -> dict[str, Any]:
    seed, items, glare, pre, cfg = job
    from classifier.features import measure

    out: dict[str, Any] = {
        "images": [],
        "lengths": [],
        "real": [],
        "kinds": [],
        "det_classes": [],
        "det_snr": [],
        "meta": [],
        "det_raw": [],
        "trk_raw": [],
        "snr": [],
        "rate": [],
    }
    presets = pre if isinstance(pre, tuple) else (pre,)
    for index, real, planet, *kind in items:
        t = make_tracklet(
            seed, index, real, cfg, glare=glare, field=planet, bogus_kind=kind[0] if kind else None
        )
        raw = np.stack([d.stamp.difference for d in t.detections])
        meta = np.array([[d.mjd, d.ra, d.dec, d.mag, d.x, d.y, d.fwhm_px] for d in t.detections])
        out["images"].append([prepare(raw, p, fwhm=meta[:, 6]).astype(np.float16) for p in presets])
        out["lengths"].append(len(t.detections))
        out["real"].append(t.real)
        out["kinds"].append(tracklet_kind(t))
        out["det_classes"] += t.classes
        out["det_snr"] += [float(d.stamp.latents.get("snr", 0.0)) for d in t.detections]
        cues = measure(*meta[:, :6].T, raw, meta[:, 6], filtered=True)  # every cue set's
        out["meta"].append(meta)
        out["det_raw"].append(cues.detections)
        out["trk_raw"].append(cues.tracklet)
        out["snr"].append(float(t.latents["snr"]) if t.real else float("nan"))
        out["rate"].append(float(t.latents["rate_deg_day"]) if t.real else cues.fit.rate_deg_day)
    out["images"] = [np.concatenate([im[k] for im in out["images"]]) for k in range(len(presets))]
    return out


def tracklet_kind(t) -> str:
    """real, independent, correlated-<kind>, or mixed-<kind>: what results are broken down by."""
    if t.real:
        return "real"
    if t.kind == "correlated":
        return f"correlated-{t.latents['correlated_kind']}"
    if t.kind == "mixed":
        return f"mixed-{t.latents.get('mixed_kind', 'real+bogus')}"
    return t.kind


def build_tracklet_set(
    seed: int,
    n_real: int,
    n_bogus: int,
    pre,
    *,
    glare: bool,
    first_index: int = 0,
    cfg: SimConfig | None = None,
    workers: int | None = None,
    progress: bool = True,
    chunk: int = 25,
    planet_bogus: int = 0,
    mixed_bogus: int = 0,
):
    """n_real real and n_bogus bogus tracklets of `seed`, stamps prepared with `pre` (cropped),
    `planet_bogus` more bogus tracklets from one field near a planet (mostly its glare), and
    `mixed_bogus` more of the bogus kind "mixed" only (a real mover's detections linked with
    bogus ones or with another mover's: 2% of the simulator's bogus mix, too rare for a network
    to learn from at its share).

    `pre` may be a tuple of presets: then one TrackletSet per preset comes back (a tuple), on
    the same simulated tracklets (for comparing models that prepare stamps differently).
    """
    cfg = cfg or SimConfig()
    workers = workers or os.cpu_count() or 1
    items = [(first_index + i, True, None) for i in range(n_real)]
    items += [(BOGUS_INDEX_OFFSET + first_index + i, False, None) for i in range(n_bogus)]
    if planet_bogus:
        planet = PlanetField.draw(np.random.default_rng([seed, first_index, 2**31 - 3]))
        items += [
            (PLANET_INDEX_OFFSET + first_index + i, False, planet) for i in range(planet_bogus)
        ]
    items += [
        (MIXED_INDEX_OFFSET + first_index + i, False, None, "mixed") for i in range(mixed_bogus)
    ]
    jobs = [(seed, items[s : s + chunk], glare, pre, cfg) for s in range(0, len(items), chunk)]
    parts = list(_pool_map(_tracklet_job, jobs, workers, "tracklets", progress))
    presets = pre if isinstance(pre, tuple) else (pre,)
    common = {
        "lengths": np.array([n for p in parts for n in p["lengths"]], dtype=int),
        "real": np.array([r for p in parts for r in p["real"]], dtype=bool),
        "kinds": [k for p in parts for k in p["kinds"]],
        "det_classes": [c for p in parts for c in p["det_classes"]],
        "det_snr": np.array([s for p in parts for s in p["det_snr"]]),
        "meta": np.concatenate([m for p in parts for m in p["meta"]]),
        "det_raw": np.concatenate([m for p in parts for m in p["det_raw"]]),
        "trk_raw": np.stack([m for p in parts for m in p["trk_raw"]]),
        "snr": np.array([v for p in parts for v in p["snr"]]),
        "rate": np.array([v for p in parts for v in p["rate"]]),
    }
    sets = tuple(
        TrackletSet(
            images=np.concatenate([p["images"][k] for p in parts]),
            **common,
            params={
                "seed": seed,
                "n_real": n_real,
                "n_bogus": n_bogus,
                "glare": glare,
                "planet_bogus": planet_bogus,
                "mixed_bogus": mixed_bogus,
                "first_index": first_index,
                "preprocessing": one.to_dict(),
                "simulator": cfg.to_dict(),
            },
        )
        for k, one in enumerate(presets)
    )
    return sets if isinstance(pre, tuple) else sets[0]


def tracklet_set_key(seed: int, n_real: int, n_bogus: int, pre: Preprocessing, **options) -> str:
    """A hash of everything a `build_tracklet_set` depends on (the simulator's code too)."""
    import hashlib

    cfg = options.get("cfg") or SimConfig()
    key = json.dumps(
        {
            "seed": seed,
            "real": n_real,
            "bogus": n_bogus,
            "pre": pre.to_dict(),
            "sim": cfg.to_dict(),
            "code": simulator_code(),
            **{k: v for k, v in options.items() if k in ("glare", "first_index", "planet_bogus")},
            # only where asked: every set cached before keeps its key
            **({"mixed_bogus": options["mixed_bogus"]} if options.get("mixed_bogus") else {}),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def cached_tracklet_set(
    cache_dir: Path | None, seed: int, n_real: int, n_bogus: int, pre: Preprocessing, **options
) -> TrackletSet:
    """`build_tracklet_set` kept in one file under `cache_dir` (None: no cache), named by a hash
    of everything the set depends on (the simulator's code too), so a fixed set such as the
    promotion's evaluation set is simulated once per machine."""
    import pickle

    if cache_dir is None:
        return build_tracklet_set(seed, n_real, n_bogus, pre, **options)
    key = tracklet_set_key(seed, n_real, n_bogus, pre, **options)
    path = Path(cache_dir) / f"tracklets-{key}.pkl"
    if path.exists():
        try:
            with path.open("rb") as fh:  # our own file, written below
                return pickle.load(fh)
        except Exception:  # a torn or old file: build it again
            logger.warning("cached tracklet set %s unreadable; simulating it again", path)
    tset = build_tracklet_set(seed, n_real, n_bogus, pre, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(tset, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return tset


def write_build_report(
    path: Path, params: dict[str, Any], classes: list[str], snr: np.ndarray
) -> None:
    """Write a build's parameters, per-class counts and per-class SNR histograms as JSON."""
    counts = Counter(classes)
    hist = {}
    for cls in sorted(counts):
        values = snr[np.array(classes) == cls]
        hist[cls] = np.histogram(values, bins=SNR_EDGES)[0].tolist()
    report = {
        "params": params,
        "counts": dict(sorted(counts.items())),
        "snr_histogram_edges": list(SNR_EDGES),
        "snr_histograms": hist,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
