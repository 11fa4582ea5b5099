"""Checkpoints: one plain dict per model pair, written atomically, named by its content hash.

The file is ``screening-<hash>.pt`` where ``<hash>`` is the first 16 hex digits of the SHA-256
of its bytes; that hash is the model version everywhere. Loading uses ``weights_only=True`` and
checks the hash against the name. `checkpoint_payload` assembles the dict from a trained pair.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.classes import is_real

if TYPE_CHECKING:
    from classifier.networks import IcnConfig, TcnConfig
    from classifier.preprocess import Preprocessing

# 2: a set TCN that takes each detection's measured cues (classifier.features) and a Platt
# calibration of its logit. Format 1 (the paper's TCN on 4 detections, uncalibrated) still loads
# and scores as before; it simply has neither.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
PREFIX = "screening-"
HASH_LENGTH = 16
logger = logging.getLogger(__name__)
NAME_RE = re.compile(rf"^{PREFIX}([0-9a-f]{{{HASH_LENGTH}}})\.pt$")


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, of an unknown format or does not match its name."""


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:HASH_LENGTH]


def state_dict_for_checkpoint(model, half: bool) -> dict[str, Any]:
    """Weights of the unwrapped model on CPU, floating tensors in fp16 when half."""
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        out[key] = value.half() if half and value.is_floating_point() else value.clone()
    return out


def round_to_half(model):
    """Round a model's floating weights and buffers to fp16 and back, in place: what a half
    checkpoint will hold, so that scores measured now are the scores it will give."""
    import torch

    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(value.half().to(value.dtype))
    return model


def checkpoint_payload(
    icn,
    icn_cfg: IcnConfig,
    tcn,
    tcn_cfg: TcnConfig,
    pre: Preprocessing,
    threshold: float,
    metrics: dict[str, Any],
    training: dict[str, Any],
    half: bool,
    calibration: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The plain-dict checkpoint of a model pair (calibration: Platt a, b of the TCN logit)."""
    return {
        "calibration": calibration,
        "kind": "screening-model",
        "classes": list(icn_cfg.classes),
        "real_classes": [c for c in icn_cfg.classes if is_real(c)],
        "preprocessing": pre.to_dict(),
        "threshold": float(threshold),
        "icn": {"config": icn_cfg.to_dict(), "state_dict": state_dict_for_checkpoint(icn, half)},
        "tcn": {"config": tcn_cfg.to_dict(), "state_dict": state_dict_for_checkpoint(tcn, half)},
        "metrics": metrics,
        "training": training,
    }


def save_checkpoint(payload: dict[str, Any], directory: Path) -> Path:
    """Write payload (plus the format version) atomically; return the hash-named path."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, **payload}
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; workers may run as another user
        final = directory / f"{PREFIX}{file_hash(tmp)}.pt"
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def float_weights(state_dict: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's (float16) weights as float32, integer buffers as they are."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def load_checkpoint(path: Path, map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint with weights_only=True, verifying its hash when the name carries one."""
    import torch

    path = Path(path)
    match = NAME_RE.match(path.name)
    version = file_hash(path)
    if match and match.group(1) != version:
        raise CheckpointError(f"{path.name} is corrupt: its content hash is {version}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"{path} cannot be loaded: {exc}") from exc
    found = payload.get("format_version") if isinstance(payload, dict) else None
    if found not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} is not a screening checkpoint of a format this version "
            f"reads ({', '.join(map(str, READABLE_VERSIONS))}); found {found!r}"
        )
    if found < FORMAT_VERSION:
        logger.info(
            "%s is a format-%s checkpoint: the paper's TCN on 4 detections' scores, no "
            "motion or magnitude cues, no calibration; it scores as it always did",
            path.name,
            found,
        )
    payload["version"] = version
    return payload
