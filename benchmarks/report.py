"""Printing a benchmark's table (Markdown, as the notes keep them) and saving its rows as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any


def markdown_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """``left`` first columns are text (left-aligned); the others are numbers (right-aligned)."""
    align = ["---"] * left + ["---:"] * (len(header) - left)
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, align, *rows])


def save_json(path: Path | None, rows: list[Any]) -> None:
    if path is not None:
        path.write_text(json.dumps([asdict(row) for row in rows], indent=2))
