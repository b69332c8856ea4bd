"""The server's pure parts, in process: token-to-text alignment, settings, hover and diagnostics text."""

from __future__ import annotations

from lsprotocol import types

from ecco_client.lsp.presentation import diagnostics_for, hover_markdown, percent, show_token
from ecco_client.lsp.results import Alternative, ExplainedToken, Explanation, ResultStore
from ecco_client.lsp.settings import Settings, parse_settings
from ecco_client.lsp.token_spans import token_spans


def covered(text: str, spans: list[tuple[int, int] | None]) -> str:
    return "".join(text[s[0] : s[1]] for s in spans if s)


def test_spans_follow_the_tokens_and_skip_bos() -> None:
    text = "The cat sat"
    spans = token_spans(text, ["<s>", "The", " c", "at", " sat"])
    assert spans == [None, (0, 3), (3, 5), (5, 7), (7, 11)]


def test_byte_pieces_of_one_character_share_its_text_without_overlap() -> None:
    text = "a 😀 b"
    # The emoji is four UTF-8 bytes; decoded alone each byte token is U+FFFD.
    spans = token_spans(text, ["<bos>", "a", " ", "\ufffd", "\ufffd", "\ufffd", "\ufffd", " b"])
    assert spans[1] == (0, 1) and spans[2] == (1, 2)
    assert spans[3] == (2, 3) and spans[4:7] == [None, None, None]
    assert spans[7] == (3, 5)
    assert covered(text, spans) == text


def test_trailing_byte_pieces_take_the_rest_of_the_text() -> None:
    text = "café"
    spans = token_spans(text, ["c", "af", "\ufffd", "\ufffd"])
    assert covered(text, spans) == text and spans[3] is None


def test_tokenizers_that_drop_spaces_still_align() -> None:
    text = "hello  world"
    spans = token_spans(text, ["[CLS]", "hello", "world", "[SEP]"], special=[True, False, False, True])
    assert spans == [None, (0, 5), (7, 12), None]


def test_settings_read_vscode_shapes_and_report_bad_values() -> None:
    settings, problems = parse_settings(
        {
            "daemonAddress": "tcp://127.0.0.1:7000",
            "model": "tiny",
            "attributionMethods": ["gradient"],
            "probabilityThreshold": 2,
            "diagnostics": {"enabled": False},
            "generateTokens": "lots",
        }
    )
    assert settings.daemon_address == "tcp://127.0.0.1:7000" and settings.model == "tiny"
    assert settings.attribution_methods == ("gradient",)
    assert settings.diagnostics_enabled is False
    assert settings.probability_threshold == Settings().probability_threshold
    assert settings.generate_tokens == 0
    assert any("probabilityThreshold" in p for p in problems) and any("generateTokens" in p for p in problems)
    flat, _ = parse_settings({"diagnosticsEnabled": False})  # the extension's initializationOptions
    assert flat.diagnostics_enabled is False
    assert parse_settings(None)[0] == Settings()


def _explanation(probabilities: list[float | None]) -> Explanation:
    tokens = []
    for index, probability in enumerate(probabilities):
        start, end = types.Position(0, index * 2), types.Position(0, index * 2 + 2)
        tokens.append(
            ExplainedToken(
                index,
                f"t{index}",
                types.Range(start=start, end=end),
                probability,
                None if probability is None else index + 1,
                [Alternative("best", 0.5), Alternative(f"t{index}", 0.1)],
            )
        )
    whole = types.Range(start=types.Position(0, 0), end=types.Position(0, 2 * len(probabilities)))
    return Explanation("r1", "file:///a.txt", whole, "tiny", tokens, {"view": "tokens", "data": {}})


def test_hover_shows_probability_rank_and_alternatives() -> None:
    explanation = _explanation([None, 0.0057])
    text = hover_markdown(explanation, explanation.tokens[1])
    assert "0.57%" in text and "rank **2**" in text
    assert "`best`" in text and "`t1` ✓" in text
    assert "No probability" in hover_markdown(explanation, explanation.tokens[0])


def test_diagnostics_mark_only_tokens_below_the_threshold() -> None:
    found = diagnostics_for([_explanation([None, 0.5, 0.001, 0.02])], threshold=0.01)
    assert [d.range.start.character for d in found] == [4]
    assert found[0].severity == types.DiagnosticSeverity.Information and "0.1%" in found[0].message


def test_store_finds_tokens_and_drops_what_an_edit_makes_stale() -> None:
    store = ResultStore()
    store.add(_explanation([None, 0.5]))
    hit = store.token_at("file:///a.txt", types.Position(0, 3))
    assert hit is not None and hit[1].index == 1
    assert store.token_at("file:///a.txt", types.Position(0, 4)) is not None  # touching the end
    after = types.Range(start=types.Position(1, 0), end=types.Position(1, 0))
    assert store.invalidate("file:///a.txt", after) == [] and len(store) == 1
    before = types.Range(start=types.Position(0, 0), end=types.Position(0, 0))
    assert len(store.invalidate("file:///a.txt", before)) == 1 and len(store) == 0


def test_token_text_is_shown_literally() -> None:
    assert show_token(" ") == "`␣`" and show_token("\n") == "`\\n`" and show_token("a`b") == "``a`b``"
    assert percent(1e-9) == "1e-07%"


def test_pipes_in_table_cells_are_escaped() -> None:
    assert show_token("<|endoftext|>", in_table=True) == "`<\\|endoftext\\|>`"
    explanation = _explanation([None, 0.5])
    explanation.tokens[1].alternatives = [Alternative("<|im_end|>", 0.3)]
    assert "| 1 | `<\\|im_end\\|>` | 30% |" in hover_markdown(explanation, explanation.tokens[1])
