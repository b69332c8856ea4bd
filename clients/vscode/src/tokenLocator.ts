import * as vscode from "vscode";
import type { ExplainedToken, LspRange } from "../shared/protocol";

/** Converts an LSP range (as the server sends it) to a VS Code range. */
export function toRange(range: LspRange): vscode.Range {
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

/**
 * The token whose text contains a position: the one with start <= position < end, or, at a boundary
 * between two tokens, the one that starts there. Null when the position lies outside every token.
 */
export function tokenAt(tokens: readonly ExplainedToken[], position: vscode.Position): number | null {
  let touching: number | null = null;
  for (const token of tokens) {
    if (!token.range) {
      continue;
    }
    const range = toRange(token.range);
    if (range.start.isBeforeOrEqual(position) && position.isBefore(range.end)) {
      return token.index;
    }
    if (range.end.isEqual(position)) {
      touching = token.index;
    }
  }
  return touching;
}

/** The selection to show for a token in the editor, or null for a token with no text in the document. */
export function selectionFor(token: ExplainedToken | undefined): vscode.Selection | null {
  if (!token?.range) {
    return null;
  }
  const range = toRange(token.range);
  return new vscode.Selection(range.start, range.end);
}
