"""The command line: help for every command, a night bundle written through it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from classifier.cli import COMMANDS, get_args_parser, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_it_explains_every_option(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        get_args_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    actions = get_args_parser()._subparsers._group_actions[0].choices[command]._actions
    for action in actions:
        assert action.help, f"{command} {action.option_strings} has no help"
    assert "usage" in text


def test_it_writes_a_night_bundle(tmp_path: Path) -> None:
    main(["simulate-night", "--out", str(tmp_path / "n"), "--tracklets", "3", "--seed", "2"])
    rows = (tmp_path / "n" / "manifest.jsonl").read_text().splitlines()
    assert {json.loads(r)["tracklet"] for r in rows} == {"T000000", "T000001", "T000002"}


def test_it_imports_no_torch_or_django_for_the_package() -> None:
    code = (
        "import sys, classifier, classifier.cli, classifier.simulate, classifier.bundle;"
        "print('torch' in sys.modules, 'django' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_novelty_writes_the_reference_a_loaded_model_then_uses(tiny_model, tmp_path) -> None:
    import shutil

    from classifier.inference import load_model

    path = tmp_path / Path(tiny_model[0]).name
    shutil.copy(tiny_model[0], path)
    cache = tmp_path / "cache"
    for _ in range(2):  # the second run reuses the simulated tracklets kept in the cache
        main(["novelty", "--model", str(path), "--tracklets", "12", "--workers", "1",
              "--stamp-cache", str(cache)])  # fmt: skip
    assert len(list(cache.glob("tracklets-*.pkl"))) == 1
    model = load_model(path, device="cpu")
    assert model.novelty is not None and model.novelty.model_version == model.version
