"""Networks: one-channel ResNet-18, growing a class keeps weights, TCN input padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier.classes import ALL_CLASSES, PAPER_CLASSES
from classifier.networks import IcnConfig, TcnConfig, build_icn, build_tcn, grow_icn, tcn_inputs


def test_it_builds_a_one_channel_resnet18_with_one_output_per_class() -> None:
    model = build_icn(IcnConfig(classes=PAPER_CLASSES)).eval()
    with torch.inference_mode():
        out = model(torch.zeros(2, 1, 80, 80))
    assert out.shape == (2, 8)
    assert model.conv1.in_channels == 1


def test_it_grows_a_class_keeping_every_other_weight() -> None:
    cfg = IcnConfig(classes=PAPER_CLASSES)
    model = build_icn(cfg).eval()
    x = torch.randn(3, 1, 80, 80)
    with torch.inference_mode():
        before = model(x)
    conv = model.conv1.weight.clone()
    grown, new_cfg = grow_icn(model, cfg, ALL_CLASSES)
    with torch.inference_mode():
        after = grown(x)
    assert new_cfg.classes == ALL_CLASSES and after.shape == (3, 9)
    torch.testing.assert_close(after[:, :8], before)
    torch.testing.assert_close(grown.conv1.weight, conv)
    with pytest.raises(ValueError):
        grow_icn(grown, new_cfg, PAPER_CLASSES[:-1])


def test_it_pads_three_detection_tracklets_with_their_mean_scores() -> None:
    probs = np.eye(8, dtype=np.float32)[[0, 1, 2, 3, 4, 5, 6, 7, 0, 5, 5]]
    x = tcn_inputs(probs, [5, 3, 3])
    assert x.shape == (3, 32)
    np.testing.assert_allclose(x[0].reshape(4, 8), probs[:4])
    np.testing.assert_allclose(x[1].reshape(4, 8)[3], probs[5:8].mean(0))
    with pytest.raises(ValueError):
        tcn_inputs(probs, [5, 3])


def test_it_builds_a_tcn_with_one_output() -> None:
    tcn = build_tcn(TcnConfig(n_classes=8))
    assert tcn(torch.zeros(5, 32)).shape == (5, 1)
