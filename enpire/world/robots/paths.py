"""Where robot and scene assets live."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
