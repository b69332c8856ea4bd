"""What the editor shows from an explanation: hover markdown for one token, and Information diagnostics
on improbable tokens. Pure functions of stored results, so they answer without reaching the daemon."""

from __future__ import annotations

from collections.abc import Iterable

from lsprotocol import types

from ecco_client.lsp.results import ExplainedToken, Explanation

HOVER_ALTERNATIVES = 5
DIAGNOSTIC_SOURCE = "ecco"
DIAGNOSTIC_CODE = "improbable-token"


def percent(probability: float) -> str:
    """A probability as a percentage with three significant digits: 0.0057 -> '0.57%'."""
    return f"{probability * 100:.3g}%"


def show_token(text: str, in_table: bool = False) -> str:
    """A token as an inline code span; whitespace made visible, backticks kept literal. In a table cell
    a pipe is escaped: GitHub-flavored Markdown splits cells on '|' even inside code spans."""
    visible = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    if in_table:
        visible = visible.replace("|", "\\|")
    if visible == "":
        return "*(empty)*"
    if visible.strip() == "":
        visible = visible.replace(" ", "␣")
    fence = "``" if "`" in visible else "`"
    pad = " " if visible.startswith("`") or visible.endswith("`") else ""
    return f"{fence}{pad}{visible}{pad}{fence}"


def hover_markdown(explanation: Explanation, token: ExplainedToken) -> str:
    """Probability, rank and the top alternatives of one token, as Markdown."""
    lines = [f"**Ecco** · {show_token(token.text)} · token {token.index} · {explanation.model}", ""]
    if token.probability is None:
        lines.append("No probability: the first token has nothing before it to predict it from.")
    else:
        rank = f" · rank **{token.rank}**" if token.rank is not None else ""
        origin = "generated" if token.generated else "in the text"
        lines.append(f"Probability **{percent(token.probability)}**{rank} ({origin})")
    alternatives = token.alternatives[:HOVER_ALTERNATIVES]
    if alternatives:
        lines += ["", "| | the model's top choices | probability |", "|---:|---|---:|"]
        for place, alternative in enumerate(alternatives, start=1):
            chosen = " ✓" if alternative.token == token.text else ""
            lines.append(
                f"| {place} | {show_token(alternative.token, in_table=True)}{chosen} | "
                f"{percent(alternative.probability)} |"
            )
    return "\n".join(lines)


def hover_for(explanation: Explanation, token: ExplainedToken) -> types.Hover:
    return types.Hover(
        contents=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=hover_markdown(explanation, token)
        ),
        range=token.range,
    )


def diagnostics_for(explanations: Iterable[Explanation], threshold: float) -> list[types.Diagnostic]:
    """Information diagnostics on the tokens of explained ranges whose probability is below threshold."""
    found: list[types.Diagnostic] = []
    for explanation in explanations:
        for token in explanation.tokens:
            if token.range is None or token.probability is None or token.probability >= threshold:
                continue
            best = token.alternatives[0] if token.alternatives else None
            instead = (
                f"; the model expected {show_token(best.token)} ({percent(best.probability)})" if best else ""
            )
            found.append(
                types.Diagnostic(
                    range=token.range,
                    severity=types.DiagnosticSeverity.Information,
                    source=DIAGNOSTIC_SOURCE,
                    code=DIAGNOSTIC_CODE,
                    message=(
                        f"Improbable token {show_token(token.text)}: {percent(token.probability)}, "
                        f"rank {token.rank}{instead}"
                    ),
                    data={"resultId": explanation.result_id, "index": token.index},
                )
            )
    return found
