"""The model the workers use: load a checkpoint once, score stamps and tracklets in batches.

`load_model(path, device)` gives a `ScreeningModel` whose `score(stamps, lengths)` takes raw
stamps (float32 (N, 100, 100) with NaN, many tracklets' stamps one after the other) and returns
per-stamp class probabilities and one score per tracklet. How it runs is a `Runtime`:

- on a GPU: the raw stamps go to the device as one compact float32 array per batch through
  pinned, reused host buffers (the copy of the next batch overlaps the work on this one);
  preprocessing runs on the device; the ResNet-18 runs in channels-last memory format under
  bfloat16 autocast, optionally compiled with `torch.compile` (batches padded to one shape);
  the TCN runs on the device too, and only probabilities and scores come back.
- on the CPU: the precision the CPU's features suit (`classifier.hardware.inference_precision`:
  bfloat16 autocast where it has AVX-512 bf16 or AMX, 1.5-1.8x float32; float32 on AVX2
  alone, where bfloat16 is emulated and about 6x slower; int8, the ICN quantized by PyTorch
  for VNNI, on request only, see AGREEMENT), batch norm folded into the
  convolutions, channels-last, large batches, as many threads as the process has cores. The set
  TCN's cues (classifier.features) are measured on the host from the raw stamps and each
  detection's metadata, about 2,300 stamps/s on one core.

The reference path (`Runtime.reference()`: eager float32, nothing folded) is what the paths
are checked against; see AGREEMENT for the tolerances.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from classifier.networks import (
    IcnConfig,
    TcnConfig,
    build_icn,
    build_tcn,
    tcn_inputs_tensor,
)
from classifier.novelty import NoveltyReference, load_reference
from classifier.preprocess import Preprocessing, prepare_tensor

if TYPE_CHECKING:
    import torch

# Largest differences allowed between a fast path and the eager float32 reference on the same
# stamps (measured on the baseline model; bench/gpu_cpu_agreement.py prints them on a GPU).
# float32 paths differ by rounding only; bfloat16 autocast keeps 8 bits of mantissa.
AGREEMENT = {
    "fp32": {"probability": 1e-3, "score": 1e-3, "logit": 0.01},
    # the second baseline (sharper, asinh_sigma input) differs by up to 0.056 in a stamp
    # probability on the test night (the first: under 0.05); its scores stay within 0.03
    # (measured again on 1,200 simulated stamps: probability up to 0.128, score up to 0.018;
    # on 1,903 tracklets of the benchmark night, 2026-12-05: a score moved by 0.0305, past the
    # 0.03 this tolerance was, so a verdict that close could have depended on the precision)
    # "distance": a stamp's novelty distance (classifier.novelty), relative: the robust model's
    # moved by up to 10% (bf16) and 50% (int8) on 1,500 simulated tracklets, 2026-12-05
    # "logit": the score's logit, where the threshold test is made (`_near_threshold`): a
    # reduced precision moves the logit by about the same amount at every score (bf16 up to
    # 0.22 for the second baseline and 0.18 for the third on 400 simulated tracklets each, at
    # scores from 1e-6 to 1 - 1e-6; int8 up to 1.24 and 1.06, 2026-12-07), where a fixed step
    # in the score itself is a wide band of logits near a low threshold (at the third
    # baseline's 0.047, |score - threshold| <= 0.05 held 48% of a night's tracklets)
    # "score" is what a reviewer sees move, not what decides a verdict (the logit and the
    # distance do): bench/precision_agreement.py, the third baseline on 1,200 held-out nominal
    # tracklets (an AVX2 CPU, bf16 emulated, 2026-12-08): score up to 0.058, logit 0.32
    "bf16": {"probability": 0.15, "score": 0.08, "distance": 0.15, "logit": 0.5},
    # int8: the ICN quantized by PyTorch's FX graph mode (x86 kernels, VNNI), calibrated once on
    # simulated stamps; the TCN stays float32. Measured on the second baseline on 800 simulated
    # stamps: probability up to 0.58, score up to 0.09. Opt-in (INFERENCE_PRECISION=int8), never
    # chosen by itself: its stamp probabilities move too much for the stamp classes shown.
    # The third baseline on 1,200 held-out nominal tracklets (bench/precision_agreement.py, an
    # AVX2 CPU without VNNI, 2026-12-08): probability up to 0.59, score 0.31, logit 1.73, a
    # stamp's distance 0.22 of the limit (0.09 at the 99th percentile).
    "int8": {"probability": 0.6, "score": 0.4, "distance": 0.6, "logit": 2.5},
}
CPU_ONLY = ("int8",)  # quantized kernels (fbgemm / oneDNN) run on the CPU only
INT8_CALIBRATION_PER_CLASS = 24  # simulated stamps of each class the observers see


def logit(p: np.ndarray | float, eps: float = 1e-12) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [eps, 1 - eps] (a score of 0 or 1 is finite)."""
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    return np.log(p) - np.log1p(-p)


def process_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Runtime:
    """How a model runs: device, precision, memory format, folding, compilation, batching."""

    device: str = "cpu"
    precision: str = "fp32"  # "fp32", or "bf16" for bfloat16 autocast
    channels_last: bool = True
    fold_batch_norm: bool = True
    compile: bool = False
    batch_stamps: int = 256  # stamps per forward pass of the ICN
    threads: int = 0  # CPU threads (torch.set_num_threads); 0 = the cores of this process
    # bf16 and int8 move a score by up to AGREEMENT's tolerance: a tracklet that close to the
    # threshold is scored again in float32, so no verdict depends on the precision (a real
    # tracklet auto-rejected on a machine with bf16 hardware and kept on one without).
    exact_near_threshold: bool = True

    def __post_init__(self) -> None:
        if self.precision not in AGREEMENT:
            raise ValueError(f"precision must be one of {tuple(AGREEMENT)}, got {self.precision!r}")
        if self.batch_stamps < 1:
            raise ValueError(f"batch_stamps must be at least 1, got {self.batch_stamps}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (all cores) or more, got {self.threads}")
        if self.precision in CPU_ONLY and self.device != "cpu":
            raise ValueError(f"precision {self.precision} runs on the CPU only, not {self.device}")

    @classmethod
    def for_device(cls, device: str = "auto", **overrides: Any) -> Runtime:
        """The fast path for `device` ("auto": a GPU where there is one), with overrides."""
        from classifier.hardware import inference_precision, resolve_device

        device = resolve_device(device)
        if device.startswith("cuda"):
            base = cls(device=device, precision="bf16", batch_stamps=4096)
        else:
            base = cls(device=device, precision=inference_precision(device), batch_stamps=128)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def reference(cls, device: str = "cpu") -> Runtime:
        """Eager float32, nothing folded: what the other paths are compared with."""
        return cls(device=device, channels_last=False, fold_batch_norm=False)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")


@dataclass(frozen=True)
class Assessment:
    """A model's output on tracklets: per-stamp class probabilities (N, C), scores (T,), and
    per tracklet why it is unlike the training data ("" where it is not); the stamps'
    novelty distances (N,) where the model has a reference; per tracklet why its score was
    capped as a source that does not move (`classifier.motion`; "" where it was not)."""

    probabilities: np.ndarray
    scores: np.ndarray
    unlike_training: list[str]
    distances: np.ndarray | None
    not_moving: list[str] = field(default_factory=list)


@dataclass
class ScreeningModel:
    """An ICN + TCN pair with its classes, preprocessing, threshold and version (content hash)."""

    version: str
    classes: tuple[str, ...]
    threshold: float
    preprocessing: Preprocessing
    icn: Any  # the network as trained (float32, eval mode)
    tcn: Any
    runtime: Runtime
    metrics: dict[str, Any]
    training: dict[str, Any]
    tcn_config: TcnConfig | None = None
    calibration: dict[str, Any] | None = None  # Platt a, b of the TCN logit (None: sigmoid)
    novelty: NoveltyReference | None = None  # where its training data lies (None: unknown)
    _runner: Any = field(default=None, repr=False)  # the ICN as the runtime runs it
    _exact_model: Any = field(default=None, repr=False)  # float32 twin (exact_near_threshold)
    _pinned: list[Any] = field(default_factory=list, repr=False)

    @property
    def device(self) -> str:
        return self.runtime.device

    def __post_init__(self) -> None:
        import torch

        if not self.runtime.is_cuda:
            torch.set_num_threads(self.runtime.threads or process_cores())
        # The runner is the ICN up to its pooled features (fc removed); the last layer runs in
        # float32 on those, so the same pass gives the probabilities and the features the
        # novelty measure (classifier.novelty) reads.
        self._head = self.icn.fc
        self._runner = self._make_runner(self.runtime)

    def _make_runner(self, runtime: Runtime) -> Any:
        import copy

        import torch

        runner = copy.deepcopy(self.icn)
        runner.fc = torch.nn.Identity()
        if runtime.precision == "int8":
            return quantized_icn(runner, self.preprocessing, self.classes)
        if runtime.fold_batch_norm:
            from torch.fx.experimental.optimization import fuse

            runner = fuse(runner)  # a copy with batch norm folded; self.icn is kept
        if runtime.channels_last:
            runner = runner.to(memory_format=torch.channels_last)
        if runtime.compile:
            runner = torch.compile(runner, dynamic=False)
        return runner

    def exact(self) -> ScreeningModel:
        """This model on the float32 path of its device (itself where it runs float32; made
        once, on first need): what thresholds are chosen and figures measured with."""
        if self.runtime.precision == "fp32":
            return self
        if self._exact_model is None:
            exact = replace(self.runtime, precision="fp32", compile=False)
            self._exact_model = replace(
                self, runtime=exact, _runner=None, _exact_model=None, _pinned=[]
            )
        return self._exact_model

    # --- the ICN on prepared images ---------------------------------------------------------

    def _icn_probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C) float32 probabilities of prepared (B, crop, crop) images on the device."""
        return self._icn_outputs(images)[0]

    def _icn_outputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C) float32 probabilities and (B, 512) float32 pooled features of prepared
        (B, crop, crop) images on the device."""
        import torch

        count = len(images)
        if self.runtime.compile and count < self.runtime.batch_stamps:
            # one shape for the compiled graph: pad with blank images, drop their output
            images = torch.cat(
                [images, images.new_zeros((self.runtime.batch_stamps - count, *images.shape[1:]))]
            )
        x = images.unsqueeze(1)
        if self.runtime.channels_last and self.runtime.precision != "int8":
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(
            device_type="cuda" if self.runtime.is_cuda else "cpu",
            dtype=torch.bfloat16,
            enabled=self.runtime.precision == "bf16",
        ):
            features = self._runner(x)[:count].float()
        return torch.softmax(self._head(features), dim=1), features

    def _prepared_outputs(self, prepared: np.ndarray, which: int) -> list[np.ndarray]:
        """`_icn_outputs`[which] (0: probabilities, 1: features) of prepared stamps, in batches."""
        import torch

        prepared = np.asarray(prepared)
        out = []
        with torch.inference_mode():
            for start in range(0, len(prepared), self.runtime.batch_stamps):
                chunk = torch.from_numpy(prepared[start : start + self.runtime.batch_stamps])
                x = chunk.to(self.device, torch.float32, non_blocking=True)
                out.append(self._icn_outputs(x)[which].cpu().numpy())
        return out

    def stamp_probabilities(self, prepared: np.ndarray) -> np.ndarray:
        """(N, C) class probabilities of stamps already prepared by `self.preprocessing`."""
        out = self._prepared_outputs(prepared, 0)
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)

    def stamp_features(self, prepared: np.ndarray) -> np.ndarray:
        """(N, 512) pooled ICN features of stamps already prepared by `self.preprocessing`."""
        out = self._prepared_outputs(prepared, 1)
        return np.concatenate(out) if out else np.zeros((0, self._head.in_features), np.float32)

    # --- the TCN ----------------------------------------------------------------------------

    @property
    def needs_metadata(self) -> bool:
        """True where the TCN takes each detection's measured cues (a set TCN)."""
        return bool(self.tcn_config and self.tcn_config.uses_metadata)

    def cues(
        self, meta: np.ndarray | None, stamps: np.ndarray, lengths
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The TCN's cue inputs (classifier.features) of raw stamps and their metadata."""
        return self._cue_inputs(self._raw_cues(meta, stamps, lengths))

    def _raw_cues(
        self, meta: np.ndarray | None, stamps: np.ndarray, lengths
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The raw cues (per detection, per tracklet) where the TCN or the novelty measure
        reads them, else None; a model whose TCN needs them refuses to go without `meta`.
        Cue set 5's matched-filter columns are measured only for a TCN that reads them (NaN
        otherwise): scoring with another model does not pay for them."""
        if meta is None:
            if self.needs_metadata:
                raise ValueError(
                    f"model {self.version or '(unsaved)'} scores tracklets by their motion and "
                    "magnitudes too: give each detection's mjd, ra, dec, mag, x, y (meta)"
                )
            return None
        if not (self.needs_metadata or self.novelty is not None):
            return None
        from classifier.features import batch_raw, needs_filtered

        filtered = self.needs_metadata and needs_filtered(self.tcn_config.cues)
        return batch_raw(meta, stamps, lengths, filtered=filtered)

    def _cue_inputs(
        self, raw: tuple[np.ndarray, np.ndarray] | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The set TCN's inputs of raw cues, in its cue set (None for the paper's TCN)."""
        if raw is None or not self.needs_metadata:
            return None
        from classifier.features import detection_inputs, tracklet_inputs

        version = self.tcn_config.cues
        return detection_inputs(raw[0], version), tracklet_inputs(raw[1], version)

    def _tcn_scores(
        self,
        probs: torch.Tensor,
        lengths: np.ndarray,
        cues: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> torch.Tensor:
        import torch

        lengths_t = torch.as_tensor(lengths, device=probs.device)
        if self.needs_metadata:
            from classifier.networks import pack_set_inputs

            if cues is None:
                raise ValueError("this model's TCN needs the tracklets' cues (meta)")
            det = torch.as_tensor(cues[0], device=probs.device)
            trk = torch.as_tensor(cues[1], device=probs.device)
            packed, mask = pack_set_inputs(probs, det, lengths_t)
            logit = self.tcn(packed, mask, trk).squeeze(1)
        else:
            logit = self.tcn(tcn_inputs_tensor(probs, lengths_t)).squeeze(1)
        if self.calibration:
            logit = logit * self.calibration["a"] + self.calibration["b"]
        return torch.sigmoid(logit.float())

    def tracklet_scores(
        self,
        probs: np.ndarray,
        lengths: list[int] | np.ndarray,
        cues: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """(T,) TCN scores, 1 = real, of tracklets whose stamps are consecutive in probs.

        `cues` (detection inputs, tracklet inputs) from classifier.features, for a set TCN.
        """
        import torch

        lengths = _checked_lengths(lengths, len(probs))
        if not len(lengths):
            return np.zeros(0, dtype=np.float32)
        with torch.inference_mode():
            probs_t = torch.as_tensor(np.asarray(probs, np.float32), device=self.device)
            return self._tcn_scores(probs_t, lengths, cues).cpu().numpy()

    # --- raw stamps to scores ---------------------------------------------------------------

    def _host_batches(self, stamps: np.ndarray):
        """Yield (start, tensor on the device) per batch of raw stamps, through pinned buffers."""
        import torch

        size = self.runtime.batch_stamps
        if not self.runtime.is_cuda:
            for start in range(0, len(stamps), size):
                yield start, torch.from_numpy(stamps[start : start + size])
            return
        if not self._pinned:
            shape = (size, *stamps.shape[1:])
            self._pinned = [
                [torch.empty(shape, dtype=torch.float32, pin_memory=True), None] for _ in range(2)
            ]
        for i, start in enumerate(range(0, len(stamps), size)):
            slot = self._pinned[i % 2]
            if slot[1] is not None:
                slot[1].synchronize()  # the copy that last read this buffer has finished
            chunk = stamps[start : start + size]
            host = slot[0][: len(chunk)]
            host.numpy()[...] = chunk
            on_device = host.to(self.device, non_blocking=True)
            slot[1] = torch.cuda.Event()
            slot[1].record()
            yield start, on_device

    def score(
        self, stamps: np.ndarray, lengths: list[int] | np.ndarray, meta: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Score raw stamps (N, 100, 100) float32 with NaN: (stamp probs (N, C), scores (T,)).

        `meta` (N, 6): each detection's mjd, ra, dec, mag, x, y (classifier.features), which a
        model with a set TCN needs (the paper's TCN ignores it).
        """
        result = self.assess(stamps, lengths, meta)
        return result.probabilities, result.scores

    def assess(
        self, stamps: np.ndarray, lengths: list[int] | np.ndarray, meta: np.ndarray | None = None
    ) -> Assessment:
        """`score`, and how far each tracklet lies from the training data (classifier.novelty):
        its reason for being unlike training ("" where it is like it, or where the model has
        no novelty reference); and, where `meta` is given, the motion rule
        (`classifier.motion`): a tracklet whose motion is within its errors has its score
        capped below the threshold, with its reason."""
        stamps = np.ascontiguousarray(stamps, dtype=np.float32)
        lengths = _checked_lengths(lengths, len(stamps))
        probabilities, scores, distances, raw = self._network(stamps, lengths, meta)
        still = [""] * len(lengths)
        if meta is not None and len(lengths):
            # where the rule could change a verdict: a score it would cap, or a motion below the
            # trained range, which would flag the tracklet unlike training unless it is still
            judged = scores > self.threshold / 2
            if self.novelty is not None and raw is not None:
                judged |= self.novelty.below_motion(raw[1])
            scores, still = self._motion_rule(scores, stamps, lengths, meta, raw, judged)
        if self.novelty is None:
            return Assessment(probabilities, scores, [""] * len(lengths), None, still)
        reasons = self.novelty.reasons(
            distances,
            lengths,
            raw[1] if raw is not None else None,
            still=np.array([bool(r) for r in still]),
        )
        return Assessment(probabilities, scores, reasons, distances, still)

    def _motion_rule(
        self,
        scores: np.ndarray,
        stamps: np.ndarray,
        lengths: np.ndarray,
        meta: np.ndarray,
        raw: tuple[np.ndarray, np.ndarray] | None,
        judged: np.ndarray,
    ) -> tuple[np.ndarray, list[str]]:
        """The scores with the motion rule applied, and the reason of each still tracklet among
        those `judged`: the matched filter's significance is measured only for them (about
        0.6 ms a stamp, for a few percent of a night)."""
        from classifier import motion
        from classifier.features import batch_raw

        reasons = [""] * len(lengths)
        candidates = np.flatnonzero(judged)
        if not len(candidates):
            return scores, reasons
        measured = raw[1][candidates] if raw is not None else None
        if measured is not None and np.isfinite(motion.significance(measured)).all():
            trk = measured  # cue set 5 measured the significance
        else:
            starts = tracklet_starts(lengths)
            rows = np.concatenate(
                [np.arange(starts[t], starts[t] + lengths[t]) for t in candidates]
            )
            trk = batch_raw(np.asarray(meta)[rows], stamps[rows], lengths[candidates])[1]
        is_still = motion.still(trk)
        if not is_still.any():
            return scores, reasons
        capped = np.zeros(len(scores), bool)
        capped[candidates[is_still]] = True
        significance, excluded = motion.significance(trk), motion.slowest_excluded(trk)
        for k in np.flatnonzero(is_still):
            t = candidates[k]
            reasons[t] = motion.reason(float(significance[k]), float(excluded[k]), float(scores[t]))
        return motion.cap(scores, capped, self.threshold), reasons

    def _network(
        self,
        stamps: np.ndarray,
        lengths: np.ndarray,
        meta: np.ndarray | None,
        raw: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
        """The networks' output: stamp probabilities, tracklet scores, stamp novelty distances
        and the raw cues (None where not measured; `raw`: already measured, as the host
        measures them in float64 whatever the runtime's precision), with the tracklets whose
        verdict the runtime's precision could have flipped scored again in float32."""
        import torch

        size = self.preprocessing.size
        if stamps.ndim != 3 or stamps.shape[1:] != (size, size):
            raise ValueError(f"stamps must be (N, {size}, {size}), got {stamps.shape}")
        if not len(stamps):
            empty = np.zeros((0, len(self.classes)), np.float32)
            return empty, np.zeros(0, np.float32), np.zeros(0, np.float32), None
        if raw is None:
            raw = self._raw_cues(meta, stamps, lengths)
        with torch.inference_mode():
            probs = torch.empty((len(stamps), len(self.classes)), device=self.device)
            distances = np.zeros(len(stamps), np.float32)
            seeing = seeing_of(meta, len(stamps))
            for start, batch in self._host_batches(stamps):
                fwhm = None if seeing is None else seeing[start : start + len(batch)]
                images = prepare_tensor(batch, self.preprocessing, fwhm=fwhm)
                p, features = self._icn_outputs(images)
                probs[start : start + len(batch)] = p
                if self.novelty is not None:
                    distances[start : start + len(batch)] = self.novelty.stamp_distances(
                        features.cpu().numpy()
                    )
            scores = self._tcn_scores(probs, lengths, self._cue_inputs(raw))
            probabilities, scores = probs.cpu().numpy(), scores.cpu().numpy()
        near = self._near_threshold(scores, distances, lengths)
        if near.any():
            probabilities, scores, distances = self._rescore_exactly(
                near, stamps, lengths, meta, raw, (probabilities, scores, distances)
            )
        return probabilities, scores, distances, raw

    def _near_threshold(
        self, scores: np.ndarray, distances: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """Tracklets whose verdict the runtime's precision could have flipped: a score within
        its tolerance of the threshold, or one below it with a stamp whose novelty distance
        is within its tolerance of the limit (unlike training, a tracklet is never
        auto-rejected)."""
        if self.runtime.precision == "fp32" or not self.runtime.exact_near_threshold:
            return np.zeros(len(scores), bool)
        tolerance = AGREEMENT[self.runtime.precision]
        near = np.abs(logit(scores) - logit(self.threshold)) <= tolerance["logit"]
        if self.novelty is not None and len(distances):
            limit = self.novelty.stamp_limit
            close = np.abs(distances - limit) <= tolerance["distance"] * limit
            starts = tracklet_starts(lengths)
            near |= (np.add.reduceat(close.astype(int), starts) > 0) & (scores < self.threshold)
        return near

    def _rescore_exactly(self, near, stamps, lengths, meta, raw, outputs):
        """The tracklets `near` the threshold scored again in float32 (their cues, `raw`,
        reused): their stamps' probabilities and distances, and their scores, replace the
        reduced-precision ones (`outputs`)."""
        probabilities, scores, distances = outputs
        starts = tracklet_starts(lengths)
        rows = np.concatenate(
            [np.arange(starts[i], starts[i] + lengths[i]) for i in np.flatnonzero(near)]
        )
        sub_meta = None if meta is None else np.asarray(meta)[rows]
        sub_raw = None if raw is None else (raw[0][rows], raw[1][near])
        exact_p, exact_s, exact_d, _ = self.exact()._network(
            stamps[rows], np.asarray(lengths)[near], sub_meta, sub_raw
        )
        probabilities, scores = probabilities.copy(), scores.copy()
        probabilities[rows] = exact_p
        scores[near] = exact_s
        if self.novelty is not None:
            distances = distances.copy()
            distances[rows] = exact_d
        return probabilities, scores, distances

    def accepts(self, scores: np.ndarray) -> np.ndarray:
        """True where a tracklet score reaches the threshold (kept for review as real)."""
        return np.asarray(scores) >= self.threshold


def quantized_icn(icn: Any, preprocessing: Preprocessing, classes: tuple[str, ...]) -> Any:
    """The ICN in int8 (PyTorch's FX graph mode quantization, x86 back end: VNNI / AMX int8
    kernels, batch norm folded), its activation ranges calibrated on simulated stamps of the
    model's classes (a fixed seed: every worker builds the same network)."""
    import copy
    import warnings

    import torch
    from torch.ao.quantization import (
        HistogramObserver,
        PerChannelMinMaxObserver,
        QConfig,
        get_default_qconfig_mapping,
    )
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    from classifier.datasets import build_stamp_set
    from classifier.simulate import SCENES

    engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    torch.backends.quantized.engine = engine
    # the full 8 bits for activations (VNNI needs no reduced range), weights per channel
    qconfig = QConfig(
        activation=HistogramObserver.with_args(reduce_range=False),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        ),
    )
    known = tuple(c for c in classes if c in SCENES) or ("AST", "NOISE")
    calibration = build_stamp_set(
        20261203,
        known,
        INT8_CALIBRATION_PER_CLASS,
        preprocessing,
        crop=True,
        workers=1,
        progress=False,
    ).images
    x = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32)).unsqueeze(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantization's notice that it moves to torchao
        prepared = prepare_fx(
            copy.deepcopy(icn).cpu().eval(),
            get_default_qconfig_mapping(engine).set_global(qconfig),
            (x[:2],),
        )
        with torch.inference_mode():
            for start in range(0, len(x), 64):
                prepared(x[start : start + 64])
        return convert_fx(prepared)


def seeing_of(meta: np.ndarray | None, n: int) -> np.ndarray | None:
    """Each detection's exposure seeing (FWHM, px; NaN where not sent) from `meta`'s 7th
    column, or None where `meta` has none."""
    if meta is None:
        return None
    meta = np.asarray(meta, dtype=np.float64)
    if meta.ndim != 2 or meta.shape[1] < 7 or len(meta) != n:
        return None
    return meta[:, 6]


def _checked_lengths(lengths: list[int] | np.ndarray, stamps: int) -> np.ndarray:
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if int(lengths.sum()) != stamps:
        raise ValueError(f"lengths sum to {int(lengths.sum())}, not {stamps} stamps")
    if (lengths < 1).any():
        raise ValueError("every tracklet needs at least one detection")
    return lengths


def tracklet_starts(lengths: np.ndarray) -> np.ndarray:
    """Index of each tracklet's first stamp, its stamps consecutive."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)


def model_from_checkpoint(
    payload: dict[str, Any], runtime: Runtime | None = None
) -> ScreeningModel:
    """Build the networks of a loaded checkpoint dict for `runtime` (float32 weights)."""
    from classifier.checkpoint import float_weights

    runtime = runtime or Runtime()
    icn_cfg = IcnConfig.from_dict(payload["icn"]["config"])
    tcn_cfg = TcnConfig.from_dict(payload["tcn"]["config"])
    icn, tcn = build_icn(icn_cfg), build_tcn(tcn_cfg)
    icn.load_state_dict(float_weights(payload["icn"]["state_dict"]))
    tcn.load_state_dict({k: v.float() for k, v in payload["tcn"]["state_dict"].items()})
    icn.to(runtime.device).eval()
    tcn.to(runtime.device).eval()
    return ScreeningModel(
        version=payload.get("version", ""),
        classes=tuple(payload["classes"]),
        threshold=float(payload["threshold"]),
        preprocessing=Preprocessing.from_dict(payload["preprocessing"]),
        icn=icn,
        tcn=tcn,
        runtime=runtime,
        metrics=payload.get("metrics", {}),
        training=payload.get("training", {}),
        tcn_config=tcn_cfg,
        calibration=payload.get("calibration"),
    )


def load_model(
    path: str | Path, device: str = "auto", runtime: Runtime | None = None, **overrides: Any
) -> ScreeningModel:
    """Load a checkpoint (hash-checked, weights_only) as a ready ScreeningModel.

    Runs on `device` with its fast path (`Runtime.for_device`) unless `runtime` is given;
    `overrides` change single fields of it (precision="fp32", compile=True, batch_stamps=...).
    """
    from classifier.checkpoint import load_checkpoint

    runtime = replace(runtime, **overrides) if runtime else Runtime.for_device(device, **overrides)
    model = model_from_checkpoint(load_checkpoint(Path(path)), runtime)
    model.novelty = load_reference(Path(path), model.version)
    return model
