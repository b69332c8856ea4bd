"""The README's Python snippets, run as a reader would run them, in order, in one namespace.

Why: snippets that are only read drift from the code. Both tiers run them: the service tier on a tiny
model served under the README's model name, the integration tier on SmolLM2 itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str | None = None) -> list[str]:
    """Every fenced ```python block of the README, in order."""
    return re.findall(r"```python\n(.*?)```", README.read_text() if text is None else text, flags=re.S)


def run_readme() -> dict[str, Any]:
    """Runs every block; a failure names the block and its first line."""
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    blocks = python_blocks()
    assert len(blocks) >= 3, "the README lost its Python snippets"
    for index, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"README python block {index} ({block.splitlines()[0]!r}) failed: {exc!r}") from exc
    return namespace
