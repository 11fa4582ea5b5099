"""Checkpoints: hash-named, atomic, weights_only, corruption detected."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from classifier.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_it_names_the_file_by_its_content_hash_and_loads_it(tmp_path: Path) -> None:
    payload = {"classes": ["AST", "NOISE"], "weights": {"w": torch.ones(3)}, "threshold": 0.8}
    path = save_checkpoint(payload, tmp_path)
    assert path.name.startswith("screening-") and path.suffix == ".pt"
    loaded = load_checkpoint(path)
    assert loaded["version"] == path.stem.removeprefix("screening-")
    assert loaded["format_version"] == 2 and loaded["classes"] == ["AST", "NOISE"]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    assert save_checkpoint({**payload, "threshold": 0.5}, tmp_path) != path


def test_it_refuses_a_corrupted_file(tmp_path: Path) -> None:
    path = save_checkpoint({"x": torch.zeros(10)}, tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path)


def test_it_refuses_a_pickle_that_is_not_a_plain_dict(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"format_version": 1, "obj": object}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_it_names_the_formats_it_reads_when_a_file_is_of_another(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({"format_version": 3, "classes": []}, path)
    with pytest.raises(CheckpointError, match=r"reads \(1, 2\); found 3"):
        load_checkpoint(path)


def test_the_shipped_models_figures_are_for_todays_simulator() -> None:
    """A new install shows the shipped model's figures from the start only while the figures
    beside its checkpoint were measured on today's simulator (screening.registry.versions);
    a change to the simulator's code (simulate, render, tracklets, features, preprocess) that
    leaves them behind silently sends every demo back to a 5-minute evaluation run."""
    import json

    from classifier.datasets import simulator_code

    models = Path(__file__).resolve().parents[2] / "models"
    shipped = sorted(models.glob("*.evaluation.json"))
    assert shipped, "the shipped baseline's figures are missing"
    for path in shipped:
        content = json.loads(path.read_text())
        assert path.name == f"screening-{content['version'][:16]}.evaluation.json"
        assert (models / path.name.replace(".evaluation.json", ".pt")).is_file()
        assert content["simulator"] == simulator_code(), (
            f"{path.name} was measured on another simulator: with DATABASE_URL=sqlite:///..., "
            "`manage.py migrate`, `manage.py model_register <checkpoint> --activate`, then "
            "`manage.py model_evaluate --save-beside`"
        )
