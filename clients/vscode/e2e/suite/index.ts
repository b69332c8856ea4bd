// The end-to-end suite. VS Code loads this module in the extension host and awaits run(): a rejection
// fails the run. It drives the real extension through the real `vscode` API; the extension talks to the
// real pygls language server, which talks to a real daemon. Every wait polls against a deadline.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { EccoApi } from "../../src/api";
import type { ExplainResult, RenderedState } from "../../shared/protocol";

/** Written by the test that starts the run (tests/editor) into the workspace folder. */
interface Spec {
  file: string;
  /** The selection to explain, as [line, character] pairs; the whole first line when absent. */
  select?: { start: [number, number]; end: [number, number] };
  /** Where to write what the suite saw, for the calling test to report. */
  results: string;
  /** Where the harness saves the screenshot it takes when asked (while the extension host still runs). */
  screenshot?: string;
  expectDiagnostics?: boolean;
  /** How many continuation tokens the settings ask for; they stream into the panel after the result. */
  expectGenerated?: number;
}

const EXTENSION_ID = "ecco-daemon.ecco-vscode";
const POLL_MS = 100;

async function poll<T>(
  what: string,
  probe: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      if (done(last)) {
        return last;
      }
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const seen = lastError ? `; last error: ${String(lastError)}` : `; last value: ${JSON.stringify(last)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function hoverText(hovers: vscode.Hover[]): string {
  return hovers
    .flatMap((hover) => hover.contents)
    .map((content) => (typeof content === "string" ? content : content.value))
    .join("\n");
}

function rangeOf(result: ExplainResult, index: number): vscode.Range {
  const range = result.tokens[index]?.range;
  assert.ok(range, `token ${index} has a range in the document`);
  return new vscode.Range(range.start.line, range.start.character, range.end.line, range.end.character);
}

/**
 * Asks the harness (e2e/run-e2e.mjs, which reads this log line through codeAutomationLog) for a
 * screenshot, and waits until the file exists: the harness writes it under a temporary name and renames it.
 */
async function requestScreenshot(file: string): Promise<void> {
  fs.rmSync(file, { force: true });
  console.log(`[ecco e2e] screenshot-request ${file}`);
  await poll(
    "the harness's screenshot",
    () => fs.existsSync(file),
    (exists) => exists,
    30_000,
  );
}

export async function run(): Promise<void> {
  const folder = vscode.workspace.workspaceFolders?.[0];
  assert.ok(folder, "the workbench opened a workspace folder");
  const spec = JSON.parse(fs.readFileSync(path.join(folder.uri.fsPath, ".ecco-e2e.json"), "utf8")) as Spec;
  const seen: Record<string, unknown> = { steps: [] as string[] };
  const step = (name: string) => {
    (seen.steps as string[]).push(`${new Date().toISOString()} ${name}`);
    console.log(`[ecco e2e] ${name}`);
  };
  const t0 = Date.now();
  try {
    const extension = vscode.extensions.getExtension<EccoApi>(EXTENSION_ID);
    assert.ok(extension, `extension ${EXTENSION_ID} is loaded`);
    const api = await extension.activate();
    step("extension active");
    assert.equal(await api.serverReady(), true, "the language server started");
    const connected = await poll(
      "the daemon status",
      () => api.status(),
      (s) => s.daemon?.connected === true,
      60_000,
    );
    seen.statusText = connected.text;
    step(`status bar: ${connected.text}`);

    // The chat side bar takes a third of the window and has nothing to do with this test.
    await vscode.commands.executeCommand("workbench.action.closeAuxiliaryBar");
    const document = await vscode.workspace.openTextDocument(path.join(folder.uri.fsPath, spec.file));
    const editor = await vscode.window.showTextDocument(document);
    const selection = spec.select
      ? new vscode.Selection(...spec.select.start, ...spec.select.end)
      : new vscode.Selection(document.lineAt(0).range.start, document.lineAt(0).range.end);
    editor.selection = selection;
    step(`selected ${JSON.stringify(document.getText(selection))}`);

    const explainStarted = Date.now();
    await vscode.commands.executeCommand("ecco.explainSelection");
    const generated = spec.expectGenerated ?? 0;
    const state = await poll<RenderedState>(
      `the panel to draw the result${generated ? ` and ${generated} streamed tokens` : ""}`,
      () => api.renderedState(),
      (s) => {
        const shown = api.currentResult();
        const streamed = shown?.tokens.filter((t) => t.generated).length ?? 0;
        return (
          (s.phase === "result" && s.tokenCount === shown?.tokens.length && streamed === generated) ||
          s.phase === "error"
        );
      },
      120_000,
    );
    assert.equal(state.phase, "result", `the panel shows a result, not: ${state.errorMessage}`);
    seen.explainSeconds = (Date.now() - explainStarted) / 1000;
    seen.renderedState = state;
    const result = api.currentResult();
    assert.ok(result, "the extension holds the result");
    assert.equal(state.tokenCount, result.tokens.length, "one token box per token of the result");
    assert.equal(state.resultId, result.resultId);
    assert.deepEqual(state.cspViolations, [], "the panel runs under its Content-Security-Policy without violations");
    const covered = result.tokens
      .filter((t) => t.range)
      .map((t) => document.getText(rangeOf(result, t.index)))
      .join("");
    assert.equal(covered.trim(), document.getText(selection).trim(), "the tokens' ranges cover the selected text");
    seen.generatedTokens = result.tokens.filter((t) => t.generated).map((t) => t.text);
    step(`panel drew ${state.tokenCount} tokens: ${JSON.stringify(state.tokenTexts)}`);

    // A token with a probability and a range (the first token has no probability).
    const probed = result.tokens.find((t) => t.probability !== null && t.range && !t.generated);
    assert.ok(probed, "some token has a probability");

    const tooltip = await api.probeToken(probed.index, "hover");
    seen.panelTooltip = tooltip;
    assert.match(tooltip, /\d+(\.\d+)?(e-?\d+)?%/, "hovering a token in the panel shows its probability");
    step(`panel hover on token ${probed.index}: ${JSON.stringify(tooltip)}`);

    const hoverAt = rangeOf(result, probed.index).start.translate(0, rangeOf(result, probed.index).isEmpty ? 0 : 1);
    const hovers = await poll(
      "an editor hover from the language server",
      () =>
        Promise.resolve(
          vscode.commands.executeCommand<vscode.Hover[]>("vscode.executeHoverProvider", document.uri, hoverAt),
        ),
      (h) => hoverText(h ?? []).length > 0,
      20_000,
    );
    const editorHover = hoverText(hovers);
    seen.editorHover = editorHover;
    assert.match(editorHover, /\d+(\.\d+)?(e-?\d+)?\s*%/, "the editor hover shows the token's probability");
    step(`editor hover: ${JSON.stringify(editorHover)}`);

    // Panel -> editor: clicking a token selects its text.
    const clicked = result.tokens.filter((t) => t.range && !t.generated).at(-1)!;
    await api.probeToken(clicked.index, "click");
    await poll(
      "the editor to select the clicked token",
      () => vscode.window.activeTextEditor?.selection,
      (s) =>
        s !== undefined &&
        s.isEqual(new vscode.Selection(rangeOf(result, clicked.index).start, rangeOf(result, clicked.index).end)),
      10_000,
    );
    step(`click on panel token ${clicked.index} selected its text in the editor`);

    // Editor -> panel: moving the cursor into a token highlights it.
    const target = probed.index === clicked.index ? result.tokens.find((t) => t.range)! : probed;
    editor.selection = new vscode.Selection(rangeOf(result, target.index).start, rangeOf(result, target.index).start);
    const linked = await poll(
      "the panel to highlight the cursor's token",
      () => api.renderedState(),
      (s) => s.highlightedIndex === target.index,
      10_000,
    );
    seen.highlightedIndex = linked.highlightedIndex;
    step(`cursor on token ${target.index} highlighted it in the panel`);

    if (spec.expectDiagnostics) {
      const diagnostics = await poll(
        "information diagnostics on improbable tokens",
        () => vscode.languages.getDiagnostics(document.uri),
        (d) => d.some((x) => x.severity === vscode.DiagnosticSeverity.Information),
        20_000,
      );
      seen.diagnostics = diagnostics.map((d) => `${d.range.start.line}:${d.range.start.character} ${d.message}`);
      step(`${diagnostics.length} diagnostics`);
    }

    // Restarts asked for while one runs are coalesced: three at once start at most two servers.
    const startsBefore = api.serverStarts();
    await Promise.all([api.restartServer(), api.restartServer(), api.restartServer()]);
    const started = api.serverStarts() - startsBefore;
    assert.ok(started >= 1 && started <= 2, `three concurrent restarts started ${started} servers`);
    assert.equal(await api.serverReady(), true, "the server runs again after the restarts");
    await poll(
      "the daemon status after the restart",
      () => api.status(),
      (s) => s.daemon?.connected === true,
      60_000,
    );
    // The new server has no results: explaining again works, and brings the hover back for the screenshot.
    editor.selection = selection;
    await vscode.commands.executeCommand("ecco.explainSelection");
    const again = await poll(
      "the panel to draw the second result",
      () => api.renderedState(),
      (s) => (s.phase === "result" && api.currentResult() !== result) || s.phase === "error",
      120_000,
    );
    assert.equal(again.phase, "result", `the second explain shows a result, not: ${again.errorMessage}`);
    seen.restarts = { asked: 3, started, secondResultTokens: again.tokenCount };
    step(`3 concurrent restarts started ${started} server(s)`);

    // Show the editor hover on the probed token, and have the harness take the screenshot now: once run()
    // returns, the extension host stops and the panel and status bar item go with it.
    editor.selection = new vscode.Selection(hoverAt, hoverAt);
    await vscode.commands.executeCommand("editor.action.showHover");
    seen.statusTextAfter = api.status().text;
    if (spec.screenshot) {
      await requestScreenshot(spec.screenshot);
      step(`screenshot saved to ${spec.screenshot}`);
    }
    seen.ok = true;
  } catch (error) {
    seen.ok = false;
    seen.error = error instanceof Error ? `${error.message}\n${error.stack ?? ""}` : String(error);
    if (spec.screenshot) {
      // Keep the window as the failure left it, while the panel and the status bar still exist.
      await requestScreenshot(spec.screenshot).catch(() => undefined);
    }
    throw error;
  } finally {
    seen.seconds = (Date.now() - t0) / 1000;
    fs.writeFileSync(spec.results, JSON.stringify(seen, null, 2));
  }
}
