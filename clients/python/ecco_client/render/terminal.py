"""The views for people who live in a terminal: tokens colored by probability or saliency, with rich.

Takes the same view data as the browser renderer (protocol/VIEWS.md), so `ecco-client explain` can
print what the panel shows. Colors are truecolor backgrounds on a ramp from no color to a saturated hue;
the text on each box is black or white, whichever contrasts more.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rich.color import Color
from rich.console import Group
from rich.style import Style
from rich.table import Table
from rich.text import Text

BLUE = (31, 111, 235)
ORANGE = (217, 82, 15)
PURPLE = (112, 72, 232)
RED = (201, 42, 42)
SCALES = ("probability", "surprisal")


def _ramp(hue: tuple[int, int, int], t: float) -> Style:
    """A background `t` of the way from a light gray to `hue`, with readable text on it."""
    t = min(1.0, max(0.0, t))
    base = (235, 235, 235)
    rgb = tuple(round(b + (h - b) * t) for b, h in zip(base, hue, strict=True))
    luminance = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return Style(bgcolor=Color.from_rgb(*rgb), color="black" if luminance > 140 else "white")


def _shown(text: str) -> str:
    return text.replace("\n", "↵\n").replace("\t", "⇥")


def _legend(title: str, hue: tuple[int, int, int], low: str, high: str) -> Text:
    legend = Text(f"{title}: {low} ", style="dim")
    for i in range(9):
        legend.append("  ", style=_ramp(hue, i / 8))
    legend.append(f" {high}", style="dim")
    return legend


def probability_text(data: Mapping[str, Any], *, scale: str = "probability") -> Group:
    """Every token on a background by its probability (or surprisal, capped at 16 bits)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
    text = Text()
    for token, prob in zip(data["tokens"], data["probs"], strict=True):
        if prob is None:
            text.append(_shown(token["text"]), style="dim" if token.get("is_input") else "")
            continue
        t = prob if scale == "probability" else min(1.0, -math.log2(max(prob, 1e-30)) / 16)
        text.append(_shown(token["text"]), style=_ramp(BLUE if scale == "probability" else ORANGE, t))
    legend = (
        _legend("probability", BLUE, "0%", "100%")
        if scale == "probability"
        else _legend("surprisal", ORANGE, "0", "≥16 bits")
    )
    return Group(text, legend)


def saliency_text(data: Mapping[str, Any], *, target: int | None = None, method: str | None = None) -> Group:
    """The tokens before one output token (default: the last) colored by their attribution to it."""
    chosen = _method(data, method)
    targets = list(chosen["targets"])
    position = targets[-1] if target is None else target
    if position not in targets:
        raise ValueError(f"position {position} was not attributed; attributed positions: {targets}")
    row = [v or 0.0 for v in chosen["values"][targets.index(position)][:position]]
    biggest = max((abs(v) for v in row), default=0.0) or 1.0
    text = Text()
    for j, token in enumerate(data["tokens"]):
        if j < position:
            score = row[j]
            text.append(_shown(token["text"]), style=_ramp(PURPLE if score >= 0 else RED, abs(score) / biggest))
        elif j == position:
            text.append(_shown(token["text"]), style=Style(bold=True, underline=True))
        else:
            text.append(_shown(token["text"]), style="dim")
    label = chosen.get("label") or chosen["name"]
    title = Text(f"{label}: what drove {data['tokens'][position]['text']!r} (position {position})", style="bold")
    foils = chosen.get("foils")
    if foils and foils[targets.index(position)]:
        title.append(f", rather than {foils[targets.index(position)]['text']!r}", style="bold")
    return Group(title, text, _legend("attribution", PURPLE, "0", "max"))


def probability_table(data: Mapping[str, Any], *, alternatives: int = 3) -> Table:
    """The numbers behind the probability colours: each token's probability, rank and the model's top picks."""
    table = Table("pos", "token", "probability", "rank", "model's top choices", box=None, header_style="bold")
    ranks = data.get("ranks") or [None] * len(data["tokens"])
    tops = data.get("top") or [None] * len(data["tokens"])
    for index, (token, prob, rank, top) in enumerate(zip(data["tokens"], data["probs"], ranks, tops, strict=True)):
        picks = ", ".join(f"{c['text']!r} {c['prob']:.1%}" for c in (top or [])[:alternatives])
        table.add_row(str(index), repr(token["text"]), "" if prob is None else f"{prob:.2%}",
                      "" if rank is None else str(rank), picks, style=None if prob is not None else "dim")
    return table


def saliency_table(data: Mapping[str, Any], *, target: int, method: str | None = None) -> Table:
    """The numbers behind the saliency colours: each earlier token's share of what drove ``target``."""
    chosen = _method(data, method)
    row = chosen["values"][list(chosen["targets"]).index(target)]
    table = Table("pos", "token", "attribution", box=None, header_style="bold")
    for index in range(target):
        value = row[index] or 0.0
        table.add_row(str(index), repr(data["tokens"][index]["text"]), f"{value:.3f}")
    return table


def rankings_watch_table(data: Mapping[str, Any]) -> Table:
    """Each watched token's rank at every layer for one position (1: the layer's top prediction)."""
    position = int(data["position"])
    after = data["tokens"][position - 1]["text"] if 0 < position <= len(data["tokens"]) else ""
    table = Table("layer", *(repr(w["text"]) for w in data["watch"]), box=None, header_style="bold",
                  title=f"rank of each watched token at position {position} (after {after!r})", title_justify="left")
    for label, row in zip(data["layer_labels"], data["ranks"], strict=True):
        table.add_row(str(label), *(str(int(rank)) for rank in row))
    return table


def _method(data: Mapping[str, Any], method: str | None) -> Mapping[str, Any]:
    methods: Sequence[Mapping[str, Any]] = data["methods"]
    chosen = next((m for m in methods if m["name"] == method), None) if method else methods[0]
    if chosen is None:
        raise ValueError(f"no attribution method {method!r}; computed: {[m['name'] for m in methods]}")
    return chosen


def terminal_view(view: str, data: Mapping[str, Any], **options: Any) -> Group:
    """A rich renderable for the views that read as colored text (probability, saliency)."""
    if view == "probability":
        return probability_text(data, **options)
    if view == "saliency":
        return saliency_text(data, **options)
    raise ValueError(f"the terminal shows the probability and saliency views, not {view!r}")
