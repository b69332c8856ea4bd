import * as vscode from "vscode";
import type { ExplainResult, LspRange, StreamedToken } from "../shared/protocol";
import { logError, logInfo } from "./common/logger";
import type { ServerLifecycle } from "./common/server";
import { explainOptions, readSettings } from "./common/settings";
import type { ExplainViewProvider } from "./panel/explainViewProvider";
import { selectionFor, tokenAt } from "./tokenLocator";

export const EXPLAIN_COMMAND = "ecco.explain";
export const RECOMPUTE_COMMAND = "ecco.recompute";
const MAX_EARLY_TOKENS = 1024;

/**
 * "Explain selection": sends the selected range to the language server, shows the result in the panel,
 * and keeps the panel and the editor pointing at the same token (click in the panel reveals the token's
 * text; moving the cursor highlights the token in the panel). The link holds until the document changes.
 */
export class Explainer implements vscode.Disposable {
  private current: ExplainResult | undefined;
  private highlighted: number | null = null;
  /**
   * Streamed tokens of results not adopted yet: the server streams right after its reply, and the
   * notifications can overtake the reply on its way through withProgress. Bounded; cleared on adoption.
   */
  private early: StreamedToken[] = [];
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly server: ServerLifecycle,
    private readonly panel: ExplainViewProvider,
  ) {
    this.disposables.push(
      vscode.window.onDidChangeTextEditorSelection((event) => this.followSelection(event)),
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (this.current && event.contentChanges.length && event.document.uri.toString() === this.current.uri) {
          this.current = undefined; // token ranges no longer match the text
          this.panel.highlight(null);
        }
      }),
    );
  }

  get result(): ExplainResult | undefined {
    return this.current;
  }

  /** Explains the selection; `foil` (a token) asks "why each token rather than the foil?" instead of the
   * ecco.contrastiveFoil setting. */
  async explainSelection(editor = vscode.window.activeTextEditor, foil?: string): Promise<ExplainResult | undefined> {
    if (!editor) {
      void vscode.window.showWarningMessage("Ecco: open a file and select text to explain.");
      return undefined;
    }
    const selection = editor.selection.isEmpty
      ? editor.document.lineAt(editor.selection.active.line).range
      : editor.selection;
    if (selection.isEmpty || !editor.document.getText(selection).trim()) {
      void vscode.window.showWarningMessage("Ecco: select some text to explain.");
      return undefined;
    }
    const uri = editor.document.uri.toString();
    const range: LspRange = {
      start: { line: selection.start.line, character: selection.start.character },
      end: { line: selection.end.line, character: selection.end.character },
    };
    const settings = readSettings(editor.document.uri);
    const options = explainOptions(settings, foil ?? settings.contrastiveFoil);
    await this.panel.reveal();
    this.panel.showLoading(`Explaining ${editor.document.getText(selection).length} characters with ${options.model}…`);
    logInfo(`explain ${uri} ${JSON.stringify(range)} ${JSON.stringify(options)}`);
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Ecco: explaining the selection", cancellable: true },
        (_progress, token) => this.server.executeCommand<ExplainResult>(EXPLAIN_COMMAND, [uri, range, options], token),
      );
      if (!result) {
        throw new Error("the language server returned no result");
      }
      this.adopt(result);
      return result;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logError("explain failed", error);
      this.panel.showError(message);
      void vscode.window.showErrorMessage(`Ecco: ${message}`);
      throw error;
    }
  }

  /** A continuation token streamed by the server: shown in the panel and linked like the others. */
  appendToken(streamed: StreamedToken): void {
    if (this.current?.resultId === streamed.resultId) {
      this.panel.appendToken(streamed.resultId, streamed.token);
    } else {
      this.early = [...this.early.slice(-(MAX_EARLY_TOKENS - 1)), streamed];
    }
  }

  /** Makes a result the current one, with any of its tokens that streamed in before it. */
  private adopt(result: ExplainResult): void {
    const known = new Set(result.tokens.map((t) => t.index));
    for (const streamed of this.early) {
      if (streamed.resultId === result.resultId && !known.has(streamed.token.index)) {
        result.tokens.push(streamed.token);
        known.add(streamed.token.index);
      }
    }
    this.early = [];
    this.current = result;
    this.highlighted = null;
    this.panel.showResult(result);
  }

  /** The panel's token was clicked: select its text in the editor. */
  async revealToken(index: number): Promise<void> {
    const result = this.current;
    const selection = selectionFor(result?.tokens[index]);
    if (!result || !selection) {
      return;
    }
    const uri = vscode.Uri.parse(result.uri);
    const visible = vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === result.uri);
    const editor = visible ?? (await vscode.window.showTextDocument(uri, { preserveFocus: false }));
    editor.selection = selection;
    editor.revealRange(selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  /** Recomputes one view from the stored result (another position, other watched tokens, k factors). */
  recompute(resultId: string, view: string, params: Record<string, unknown>): Promise<unknown> {
    return this.server.executeCommand<unknown>(RECOMPUTE_COMMAND, [resultId, view, params]);
  }

  private followSelection(event: vscode.TextEditorSelectionChangeEvent): void {
    const result = this.current;
    if (!result || event.textEditor.document.uri.toString() !== result.uri) {
      return;
    }
    const selection = event.selections[0];
    const index = tokenAt(result.tokens, selection.isEmpty ? selection.active : selection.start);
    if (index !== this.highlighted) {
      this.highlighted = index;
      this.panel.highlight(index);
    }
  }

  dispose(): void {
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }
}
