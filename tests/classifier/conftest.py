"""The classifier needs no Django: replace the project's settings-based autouse fixture."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def media_root(tmp_path: Path) -> Path:
    return tmp_path / "media"
