"""An untrained model checkpoint of the real architecture: costs what the real one costs."""

from __future__ import annotations


def make_checkpoint(directory, seed: int):
    """A real checkpoint of the paper's networks with random weights (no training)."""
    import torch

    from classifier.checkpoint import save_checkpoint
    from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn
    from classifier.preprocess import Preprocessing
    from classifier.train import checkpoint_payload
    from tests.stamps import PAPER_CLASSES

    torch.manual_seed(seed)
    icn_cfg, tcn_cfg = IcnConfig(classes=tuple(PAPER_CLASSES)), TcnConfig(n_classes=8)
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
    )
    return save_checkpoint(payload, directory)
