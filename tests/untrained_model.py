"""An untrained model checkpoint of the real architecture: costs what the real one costs."""

from __future__ import annotations


def make_checkpoint(directory, seed: int, tcn_kind: str = "set", classes=None):
    """A real checkpoint of the shipped networks with random weights (no training).

    tcn_kind "set" (default, as the shipped baseline): the TCN takes each detection's motion and
    magnitude cues, so every scoring path must hand it the detections' metadata; "mlp4": the
    paper's TCN (a format-1 style model). `classes`: the ICN's 8 class names (default the
    paper's).
    """
    import torch

    from classifier.checkpoint import checkpoint_payload, save_checkpoint
    from classifier.features import N_DETECTION_INPUTS, N_TRACKLET_INPUTS
    from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn
    from classifier.preprocess import Preprocessing
    from tests.stamps import PAPER_CLASSES

    torch.manual_seed(seed)
    icn_cfg = IcnConfig(classes=tuple(classes or PAPER_CLASSES))
    tcn_cfg = TcnConfig(n_classes=8)
    if tcn_kind == "set":
        tcn_cfg = TcnConfig(
            n_classes=8,
            kind="set",
            n_detection_features=N_DETECTION_INPUTS,
            n_tracklet_features=N_TRACKLET_INPUTS,
        )
    payload = checkpoint_payload(
        build_icn(icn_cfg),
        icn_cfg,
        build_tcn(tcn_cfg),
        tcn_cfg,
        Preprocessing(),
        threshold=0.5,
        metrics={},
        training={"note": f"untrained test model, seed {seed}"},
        half=True,
        calibration={"method": "platt", "a": 1.0, "b": 0.0} if tcn_kind == "set" else None,
    )
    return save_checkpoint(payload, directory)
