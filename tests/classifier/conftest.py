"""The classifier needs no Django: replace the project's settings-based autouse fixture."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_ICN = {"n_train": 6, "n_val": 2, "max_epochs": 1}
TINY_TCN = {"n_real": 8, "n_bogus": 8, "n_val_real": 6, "n_val_bogus": 6, "epochs": 2}


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path) -> Path:
    return tmp_path / "media"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> tuple[Path, dict]:
    """A model pair trained in seconds on tiny simulated data (shared by the whole session)."""
    from classifier.train import train_model

    out = tmp_path_factory.mktemp("models")
    return train_model(
        seed=3,
        preset="default",
        out_dir=out,
        device="cpu",
        workers=1,
        icn_overrides=TINY_ICN,
        tcn_overrides=TINY_TCN,
        progress=False,
    )


def tiny_set_model(
    out: Path, preset: str = "metadata", seed: int = 3, cues: int | None = None
) -> tuple[Path, dict]:
    """A recipe with a set TCN (metadata: the shipped one; robust) trained on tiny data; `cues`
    another cue set than the preset's."""
    from classifier.preprocess import Preprocessing
    from classifier.train import train_model

    return train_model(
        seed=seed,
        preset=preset,
        out_dir=out,
        device="cpu",
        workers=1,
        icn_overrides={**TINY_ICN, "batch_size": 8},
        tcn_overrides={
            **TINY_TCN,
            "n_real": 20,
            "n_bogus": 20,
            **({"cues": cues} if cues is not None else {}),
        },
        pre=Preprocessing("asinh_sigma"),
        target_recall=0.9,
        progress=False,
    )


@pytest.fixture(scope="session")
def tiny_metadata_model(tmp_path_factory) -> tuple[Path, dict]:
    """The shipped recipe (set TCN with motion cues, calibrated, asinh_sigma) on tiny data."""
    return tiny_set_model(tmp_path_factory.mktemp("models"))
