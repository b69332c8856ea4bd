"""The terminal rendering (rich) of the probability and saliency views, on the tiny model's data."""

from __future__ import annotations

import pytest
from rich.console import Console

from ecco_client.render import terminal_view


def styles_by_token(renderable, tokens) -> list[str]:
    """The style rich gives each token's text, in order, found by the token's character offset."""
    text = renderable.renderables[-2] if len(renderable.renderables) == 3 else renderable.renderables[0]
    starts = {span.start: str(span.style) for span in text.spans}
    styles, offset = [], 0
    for token in tokens:
        styles.append(starts.get(offset, ""))
        offset += len(token["text"].replace("\n", "↵\n").replace("\t", "⇥"))
    assert offset == len(text.plain)
    return styles


def printed(renderable) -> str:
    console = Console(record=True, color_system="truecolor", width=120, force_terminal=True)
    console.print(renderable)
    return console.export_text(styles=False)


def test_probability_text_colors_each_token_by_probability(view_data):
    data = view_data["probability"]
    view = terminal_view("probability", data)
    out = printed(view)
    assert "".join(t["text"] for t in data["tokens"]).strip() in out.replace("\n", "", 1)
    assert "probability: 0%" in out
    styles = styles_by_token(view, data["tokens"])
    scored = [i for i, p in enumerate(data["probs"]) if p is not None]
    hi = max(scored, key=lambda i: data["probs"][i])
    lo = min(scored, key=lambda i: data["probs"][i])
    assert styles[hi] != styles[lo]
    surprisal = styles_by_token(terminal_view("probability", data, scale="surprisal"), data["tokens"])
    assert surprisal[hi] != styles[hi]
    with pytest.raises(ValueError):
        terminal_view("probability", data, scale="logits")


def test_saliency_text_explains_the_chosen_token(view_data):
    data = view_data["saliency"]
    targets = data["methods"][0]["targets"]
    view = terminal_view("saliency", data, target=targets[0])
    out = printed(view)
    assert f"position {targets[0]}" in out
    styles = styles_by_token(view, data["tokens"])
    assert len(set(styles[: targets[0]])) > 1  # the tokens before it get different shades
    assert all(s == "dim" for s in styles[targets[0] + 1 :])
    contrastive = printed(terminal_view("saliency", data, method="contrastive"))
    assert "rather than" in contrastive
    with pytest.raises(ValueError, match="not attributed"):
        terminal_view("saliency", data, target=0)
