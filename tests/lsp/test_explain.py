"""ecco.explain end to end: the real server, the real daemon, the tiny Llama. Token ranges in UTF-16
columns, hover, diagnostics and their settings, progress, the streamed continuation, and edits."""

from __future__ import annotations

import re
from pathlib import Path

from lsprotocol import types

from tests.lsp.lsp_session import Session
from tests.lsp.renderer_check import render_problems

# An astral character before the selection: its UTF-16 length (2) differs from its length in code points (1).
TEXT = "Intro line\n😀 The cat sat on the mat.\n"
LINE = 1
START_CHAR = 3  # after "😀 " in UTF-16 code units
SELECTED = "The cat sat on the mat."


def selection() -> types.Range:
    return types.Range(
        start=types.Position(LINE, START_CHAR), end=types.Position(LINE, START_CHAR + len(SELECTED))
    )


def text_of(token_range: dict) -> str:
    """The document text a token range covers, counting columns in UTF-16 code units."""
    line = TEXT.split("\n")[token_range["start"]["line"]].encode("utf-16-le")
    assert token_range["start"]["line"] == token_range["end"]["line"] == LINE
    return line[2 * token_range["start"]["character"] : 2 * token_range["end"]["character"]].decode(
        "utf-16-le"
    )


async def test_explain_maps_tokens_to_the_selected_text(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(uri, selection())
    assert result["uri"] == uri and result["resultId"]
    assert session.last_status()["model"] == result["model"]  # the daemon's name, not the setting's path
    tokens = result["tokens"]
    assert [t["index"] for t in tokens] == list(range(len(tokens)))
    located = [t for t in tokens if t["range"]]
    assert "".join(text_of(t["range"]) for t in located) == SELECTED
    for token in located:
        assert text_of(token["range"]).strip() == token["text"].strip()
    assert tokens[0]["probability"] is None  # nothing predicts the first token
    scored = [t for t in tokens if t["probability"] is not None]
    assert scored and all(0.0 < t["probability"] <= 1.0 and t["rank"] >= 1 for t in scored)
    assert all(len(t["alternatives"]) == 5 for t in scored)
    assert not any(t["generated"] for t in tokens)
    view = result["view"]
    assert view["view"] == "tabs"
    probability = next(tab for tab in view["data"]["tabs"] if tab["view"] == "probability")
    assert len(probability["data"]["tokens"]) == len(tokens)
    assert [p for p in probability["data"]["probs"]] == [t["probability"] for t in tokens]


async def test_hover_shows_probability_rank_and_alternatives(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(uri, selection())
    token = next(t for t in result["tokens"] if t["probability"] is not None and t["range"])
    inside = token["range"]["start"]
    hover = await session.hover(uri, inside["line"], inside["character"])
    assert hover is not None and hover.contents.kind == types.MarkupKind.Markdown
    percent = f"{token['probability'] * 100:.3g}%"
    assert percent in hover.contents.value and f"rank **{token['rank']}**" in hover.contents.value
    rows = re.findall(r"^\| (\d) \|", hover.contents.value, flags=re.MULTILINE)
    assert rows == ["1", "2", "3", "4", "5"]  # the top five alternatives, one table row each
    assert hover.range is not None and hover.range.start.character == inside["character"]
    assert await session.hover(uri, 0, 2) is None  # outside every explained range


async def test_diagnostics_follow_threshold_and_settings(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    session.client.set_configuration(1.0, section="ecco.probabilityThreshold")
    result = await session.explain(uri, selection())
    expected = [t for t in result["tokens"] if t["probability"] is not None and t["range"]]
    found = await session.wait_for("diagnostics", lambda: session.client.diagnostics.get(uri))
    assert len(found) == len(expected)
    assert all(d.severity == types.DiagnosticSeverity.Information and d.source == "ecco" for d in found)
    assert {(d.range.start.line, d.range.start.character) for d in found} == {
        (t["range"]["start"]["line"], t["range"]["start"]["character"]) for t in expected
    }

    session.client.set_configuration(False, section="ecco.diagnostics.enabled")
    session.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await session.wait_for("diagnostics to be cleared", lambda: session.diagnostics_cleared(uri))


async def test_an_edit_drops_the_explanation(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    session.client.set_configuration(1.0, section="ecco.probabilityThreshold")
    result = await session.explain(uri, selection())
    await session.wait_for("diagnostics", lambda: session.client.diagnostics.get(uri))
    session.client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=types.Position(0, 0), end=types.Position(0, 0)), text="New "
                )
            ],
        )
    )
    await session.wait_for("stale diagnostics to be cleared", lambda: session.diagnostics_cleared(uri))
    token = next(t for t in result["tokens"] if t["range"])
    assert (
        await session.hover(uri, token["range"]["start"]["line"], token["range"]["start"]["character"])
        is None
    )


async def test_progress_is_reported_for_the_analysis(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    await session.explain(uri, selection())
    reports = [
        r
        for r in session.client.progress_reports.values()
        if r and isinstance(r[0], types.WorkDoneProgressBegin) and "analyzing" in r[0].title
    ]
    assert len(reports) == 1
    begin, *middle, end = reports[0]
    assert isinstance(end, types.WorkDoneProgressEnd) and end.message == "done"
    assert any(isinstance(r, types.WorkDoneProgressReport) for r in middle)


async def test_continuation_streams_after_the_result(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(
        uri, selection(), {"model": session.model, "attribution": [], "generate": 4}
    )
    streamed = await session.wait_for(
        "four streamed tokens", lambda: len(session.tokens) >= 4 and session.tokens
    )
    assert {s["resultId"] for s in streamed} == {result["resultId"]}
    indexes = [s["token"]["index"] for s in streamed]
    assert indexes == list(range(len(result["tokens"]), len(result["tokens"]) + 4))
    for item in streamed:
        token = item["token"]
        assert token["generated"] is True and token["range"] is None
        assert 0.0 < token["probability"] <= 1.0 and token["alternatives"]
    generating = [
        r
        for r in session.client.progress_reports.values()
        if r and isinstance(r[0], types.WorkDoneProgressBegin) and "generating" in r[0].title
    ]
    await session.wait_for(
        "the generation progress to end",
        lambda: generating and isinstance(generating[0][-1], types.WorkDoneProgressEnd),
    )


async def test_the_view_is_drawn_by_the_renderer(session: Session, tmp_path: Path) -> None:
    uri = session.open(tmp_path / "doc.txt", TEXT)
    result = await session.explain(uri, selection())
    problems, titles = await render_problems(result["view"], tmp_path)
    assert problems == []
    assert titles == ["Probability", "Saliency", "Layer predictions", "Rankings", "Neuron factors", "Rankings watch",
                      "Attention"]
