"""Entry point of `python -m classifier`."""

from __future__ import annotations

from classifier.cli import main

if __name__ == "__main__":
    main()
