// The end-to-end suite. VS Code loads this module in the extension host and awaits run(): a rejection
// fails the run. It drives the real extension through the real `vscode` API; the extension talks to the
// real pygls language server, which talks to a real daemon. Every wait polls against a deadline.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import type { EccoApi } from "../../src/api";
import type { ExplainResult, RenderedState, TabSnapshot } from "../../shared/protocol";

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
  /** Where the harness saves the screenshot of the Attention tab once it drew a layer asked for live. */
  liveScreenshot?: string;
  /** Last, explain a longer text with slow attribution methods and watch the status bar's percentage. */
  statusProgress?: StatusProgressSpec;
}

interface StatusProgressSpec {
  /** The file whose whole text is explained: long enough that the work lasts a few progress reports. */
  file: string;
  /** Set as ecco.attributionMethods for this explain (ecco.generateTokens is set to 0). */
  attributionMethods: string[];
  /** Where the harness records what the workbench's status bar item drew (see run-e2e.mjs). */
  record: string;
  /** Where the harness saves a screenshot once the item shows a percentage strictly between 0 and 100. */
  screenshot: string;
}

/** What the harness saw of the status bar item in the workbench's DOM, written to StatusProgressSpec.record. */
interface DomStatusRecord {
  /** Every distinct text the item showed while watched (a MutationObserver on the status bar). */
  texts: { t: number; text: string | null }[];
  /** The item's text just before and just after the screenshot; absent when no percentage showed. */
  screenshot?: { file: string; before: string | null; after: string | null };
  /** The item's text when the watch stopped (after the work ended). */
  final: string | null;
  /** Why the harness could not watch. */
  error?: string;
}

/** One distinct state of the status bar item as the extension host sees it. */
interface HostStatusSample {
  t: number;
  text: string;
  workId?: string;
  percentage?: number | null;
}

const PERCENT = /(\d+)%/;

/** How many steps of workbench.action.decreaseViewWidth the editor gives the side bar for the attention screenshot. */
const WIDEN_STEPS = 10;
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
 * Without `waitForHover`, the harness takes it at once instead of waiting up to 5 s for an editor hover.
 */
async function requestScreenshot(file: string, waitForHover = true): Promise<void> {
  fs.rmSync(file, { force: true });
  console.log(`[ecco e2e] screenshot-request ${waitForHover ? "" : "--no-hover "}${file}`);
  await poll(
    "the harness's screenshot",
    () => fs.existsSync(file),
    (exists) => exists,
    30_000,
  );
}

/** The percentage in a status bar text, or undefined when it shows none. */
function percentIn(text: string | null | undefined): number | undefined {
  const match = text?.match(PERCENT);
  return match ? Number(match[1]) : undefined;
}

/**
 * The harness watches the status bar item in the DOM between a start and a stop asked for through the log
 * (like screenshots); it acknowledges the start with `${record}.started` and writes `record` at the stop.
 */
async function startDomWatch(spec: StatusProgressSpec): Promise<void> {
  fs.rmSync(spec.record, { force: true });
  fs.rmSync(`${spec.record}.started`, { force: true });
  console.log(`[ecco e2e] status-watch-start ${JSON.stringify({ record: spec.record, screenshot: spec.screenshot })}`);
  await poll(
    "the harness to watch the status bar",
    () => fs.existsSync(`${spec.record}.started`),
    (exists) => exists,
    30_000,
  );
}

async function stopDomWatch(spec: StatusProgressSpec): Promise<DomStatusRecord> {
  console.log(`[ecco e2e] status-watch-stop ${spec.record}`);
  await poll(
    "the harness's record of the status bar",
    () => fs.existsSync(spec.record),
    (exists) => exists,
    30_000,
  );
  return JSON.parse(fs.readFileSync(spec.record, "utf8")) as DomStatusRecord;
}

/**
 * Percentages of one piece of work never go back, and lie in 0..100. `pieces` maps a key (the work's id,
 * or one key for all when the ids are unknown) to the percentages seen in order.
 */
function assertPercentages(where: string, pieces: Map<string, number[]>): void {
  for (const [key, values] of pieces) {
    for (const [i, value] of values.entries()) {
      assert.ok(value >= 0 && value <= 100, `${where}: ${value}% of ${key} lies in 0..100`);
      assert.ok(i === 0 || value >= values[i - 1]!, `${where}: percentages of ${key} never decrease: ${values}`);
    }
  }
}

/** One tab's data in the result's view (the panel draws "tabs"). */
function tabData<T>(result: ExplainResult, view: string): T {
  const tabs = (result.view.data as { tabs: { view: string; data: unknown }[] }).tabs;
  const tab = tabs.find((t) => t.view === view);
  assert.ok(tab, `the result has a ${view} tab (tabs: ${tabs.map((t) => t.view).join(", ")})`);
  return tab.data as T;
}

/** The page's quoting of a token in notes and alerts (renderer/tokens.ts quoted). */
function quoted(text: string): string {
  return JSON.stringify(text).replace(/^"|"$/g, "'");
}

/**
 * The live views, end to end: controls in the panel that ask for a view computed anew (webview ->
 * extension -> `ecco.recompute` -> language server -> daemon and back), worked as a user would through
 * the page, then what the tab drew once the answer came. Also: nothing logged an error on the way, except
 * for the refused watch.
 */
async function checkLiveViews(
  api: EccoApi,
  result: ExplainResult,
  step: (name: string) => void,
  out: Record<string, unknown>,
  screenshot: string | undefined,
): Promise<void> {
  const errorsBefore = api.loggedErrors().length;
  const newErrors = () => api.loggedErrors().slice(errorsBefore);
  const started = Date.now();
  const record = (name: string, shown: TabSnapshot) => {
    out[name] = shown;
    step(`${shown.tab}: ${name}: ${JSON.stringify({ ...shown, weights: shown.weights.length })}`);
  };

  // Attention: the explain embeds the last layer only; picking layer 0 asks for it.
  const attention = tabData<{ layers: number[]; n_layers: number }>(result, "attention");
  const layers = attention.n_layers;
  assert.ok(layers > 1, `the model has several layers: ${layers}`);
  assert.deepEqual(attention.layers, [layers - 1], "the explain embeds the last layer's attention");
  const last = await api.probeControl("Attention", { action: "show" });
  record("attentionLastLayer", last);
  assert.equal(last.selects.Layer, `Layer ${layers - 1}`, "the Attention tab first shows the last layer");
  const first = await api.probeControl("Attention", { action: "select", label: "Layer", value: "0" });
  record("attentionLayer0", first);
  assert.equal(first.recompute, "answered", "picking layer 0 asked the host, and its answer was drawn");
  assert.deepEqual(first.alerts, [], "no alert in the Attention tab");
  assert.equal(first.selects.Layer, "Layer 0", "the Layer picker shows layer 0");
  assert.ok(!first.notes.some((n) => n.includes("computing")), `nothing is pending: ${first.notes}`);
  assert.ok(first.lines > 0, "attention lines are drawn for layer 0");
  assert.ok(first.weights.length > 0 && first.weights.length === last.weights.length, "both layers weigh every token");
  assert.notDeepEqual(first.weights, last.weights, "layer 0 attends otherwise than the last layer");
  assert.deepEqual(newErrors(), [], "nothing logged an error while layer 0 was computed");
  if (screenshot) {
    // The side bar is too narrow for both columns of the attention view: narrow the focused editor, which
    // widens the side bar, for the picture, then give the width back.
    await vscode.commands.executeCommand("workbench.action.focusActiveEditorGroup");
    for (let i = 0; i < WIDEN_STEPS; i++) {
      await vscode.commands.executeCommand("workbench.action.decreaseViewWidth");
    }
    await requestScreenshot(screenshot, false);
    for (let i = 0; i < WIDEN_STEPS; i++) {
      await vscode.commands.executeCommand("workbench.action.increaseViewWidth");
    }
    step(`screenshot of the Attention tab on layer 0 saved to ${screenshot}`);
  }

  // Rankings watch: two entries that are one token each ranked at every layer; an entry of several refused.
  const watch = [" the", "at"];
  const ranked = await api.probeControl("Rankings watch", {
    action: "fill-and-click",
    label: "Watch",
    value: watch.join(","),
    button: "Rank",
  });
  record("rankingsWatch", ranked);
  assert.equal(ranked.recompute, "answered", "pressing Rank asked the host, and its answer was drawn");
  assert.deepEqual(ranked.alerts, [], "no alert in the Rankings watch tab");
  assert.deepEqual(ranked.columns, ["layer", "the", "at"], "one column per watched token");
  assert.equal(ranked.rows, layers, "one row per layer");
  assert.deepEqual(newErrors(), [], "nothing logged an error while the watched tokens were ranked");
  const several = " Marie Curie";
  const refused = await api.probeControl("Rankings watch", {
    action: "fill-and-click",
    label: "Watch",
    value: several,
    button: "Rank",
  });
  record("rankingsWatchRefused", refused);
  assert.equal(refused.recompute, "failed", "the host refused a watched text of several tokens");
  assert.equal(refused.alerts.length, 1, `the tab shows one alert: ${refused.alerts}`);
  assert.ok(
    refused.alerts[0]!.includes(quoted(several)) && /tokens/.test(refused.alerts[0]!),
    `the alert names the text and says it is several tokens: ${refused.alerts[0]}`,
  );
  assert.deepEqual(refused.columns, ranked.columns, "the last ranking stays drawn under the alert");
  const refusalErrors = newErrors();
  out.refusalErrors = refusalErrors;
  assert.ok(
    refusalErrors.length > 0 && refusalErrors.every((e) => e.includes(several.trim())),
    `the log holds the refusal, and nothing else: ${JSON.stringify(refusalErrors)}`,
  );

  // Layer predictions: the explain computed the position after the text; picking an input token's asks for it.
  const position = result.tokens.find((t) => t.index >= 2 && t.range && !t.generated && t.text.trim())!.index;
  const picked = await api.probeControl("Layer predictions", { action: "click-token", position });
  record("layerPredictions", picked);
  assert.equal(picked.recompute, "answered", `picking position ${position} asked the host, and its answer was drawn`);
  assert.deepEqual(picked.alerts, [], "no alert in the Layer predictions tab");
  const note = `Predictions for position ${position}, after ${quoted(result.tokens[position - 1]!.text)}; the actual token there is ${quoted(result.tokens[position]!.text)}.`;
  assert.ok(
    picked.notes.some((n) => n.startsWith(note)),
    `the note names position ${position}: ${JSON.stringify(picked.notes)}`,
  );
  assert.equal(picked.rows, layers, "one row of predictions per layer");
  assert.equal(newErrors().length, refusalErrors.length, `no further errors: ${JSON.stringify(newErrors())}`);
  out.seconds = (Date.now() - started) / 1000;
}

/**
 * Issue 12: the status bar shows how far daemon work has got, as a percentage, while it runs. Explains a
 * longer text with slow attribution methods (a few seconds of integrated gradients on the tiny model) and
 * watches the item both through the extension's API (every distinct text, sampled every 10 ms) and in the
 * workbench's DOM (through the harness); the harness takes a screenshot while a percentage shows.
 */
async function checkStatusProgress(
  api: EccoApi,
  folder: vscode.WorkspaceFolder,
  spec: StatusProgressSpec,
  step: (name: string) => void,
  out: Record<string, unknown>,
): Promise<void> {
  const config = vscode.workspace.getConfiguration("ecco", folder.uri);
  await config.update("attributionMethods", spec.attributionMethods, vscode.ConfigurationTarget.Workspace);
  await config.update("generateTokens", 0, vscode.ConfigurationTarget.Workspace);
  const document = await vscode.workspace.openTextDocument(path.join(folder.uri.fsPath, spec.file));
  const editor = await vscode.window.showTextDocument(document);
  editor.selection = new vscode.Selection(document.positionAt(0), document.positionAt(document.getText().length));
  const idle = await poll(
    "the status bar to show no work",
    () => api.status(),
    (s) => s.daemon?.connected === true && s.work === undefined,
    30_000,
  );
  assert.equal(percentIn(idle.text), undefined, `the idle status bar shows no percentage: ${idle.text}`);

  const host: HostStatusSample[] = [];
  const panel: number[] = []; // the panel's progress bar, as drawn while it waits for the result
  out.idleText = idle.text;
  out.host = host;
  out.panel = panel;
  const t0 = Date.now();
  const sample = () => {
    const { text, work } = api.status();
    const last = host.at(-1);
    if (!last || last.text !== text || last.workId !== work?.id) {
      host.push({ t: Date.now() - t0, text, workId: work?.id, percentage: work?.percentage });
    }
  };
  await startDomWatch(spec);
  sample();
  const timer = setInterval(sample, 10);
  let dom: DomStatusRecord;
  try {
    const before = api.currentResult();
    const started = Date.now();
    // Not awaited yet: the command resolves with the result, and the panel is watched while it works.
    const explained = vscode.commands.executeCommand("ecco.explainSelection");
    const state = await poll(
      "the panel to draw the longer text's result",
      async () => {
        const drawn = await api.renderedState();
        const percentage = drawn.progress?.percentage;
        if (typeof percentage === "number" && panel.at(-1) !== percentage) {
          panel.push(percentage);
        }
        return drawn;
      },
      (s) => (s.phase === "result" && api.currentResult() !== before) || s.phase === "error",
      120_000,
    );
    await explained;
    assert.equal(state.phase, "result", `the longer explain shows a result, not: ${state.errorMessage}`);
    out.explainSeconds = (Date.now() - started) / 1000;
    await poll(
      "the status bar to return to its idle text",
      () => api.status(),
      (s) => s.work === undefined,
      10_000,
    );
  } finally {
    clearInterval(timer);
    sample();
    dom = await stopDomWatch(spec);
    out.dom = dom;
  }
  assert.equal(dom.error, undefined, "the harness watched the status bar");
  step(
    `status bar while explaining ${document.getText().length} characters: ${JSON.stringify(host.map((s) => s.text))}`,
  );
  step(`status bar in the workbench: ${JSON.stringify(dom.texts.map((s) => s.text))}`);
  step(`panel progress while explaining: ${JSON.stringify(panel)}`);

  // Through the API: every percentage shown is the shown work's, and goes forward within each piece of work.
  const hostPercents = host.filter((s) => percentIn(s.text) !== undefined);
  assert.ok(
    hostPercents.some((s) => percentIn(s.text)! > 0 && percentIn(s.text)! < 100),
    `the status bar showed a percentage between 0 and 100 while the daemon worked: ${JSON.stringify(host)}`,
  );
  const byWork = new Map<string, number[]>();
  for (const s of hostPercents) {
    assert.equal(percentIn(s.text), s.percentage, `the text shows the work's percentage: ${JSON.stringify(s)}`);
    byWork.set(s.workId!, [...(byWork.get(s.workId!) ?? []), percentIn(s.text)!]);
  }
  assertPercentages("status bar (API)", byWork);
  // The panel drew the same work's progress as a bar, and hid it with the result.
  assert.ok(
    panel.some((p) => p > 0 && p < 100),
    `the panel drew a progress percentage between 0 and 100: ${JSON.stringify(panel)}`,
  );
  assertPercentages("panel", new Map([["the analysis", panel]]));
  assert.equal((await api.renderedState()).progress, null, "the panel hides its progress once the result shows");
  assert.equal(host.at(-1)!.text, idle.text, "after the work the status bar shows its idle text again");

  // In the workbench: the item drew the percentages, in order, and went back to the idle text. One piece of
  // work showed percentages (the analysis), so the DOM's percentages, all together, never decrease.
  assert.equal(byWork.size, 1, `one piece of work showed percentages: ${[...byWork.keys()]}`);
  const domPercents = dom.texts.map((s) => percentIn(s.text)).filter((p) => p !== undefined);
  assert.ok(
    domPercents.some((p) => p > 0 && p < 100),
    `the workbench drew a percentage between 0 and 100 in the status bar: ${JSON.stringify(dom.texts)}`,
  );
  assertPercentages("status bar (DOM)", new Map([["the analysis", domPercents]]));
  const plain = (text: string | null | undefined) => (text ?? "").replace(/\$\([^)]*\)/g, "").trim();
  assert.equal(plain(dom.final), plain(idle.text), "the workbench's status bar item shows its idle text again");
  assert.ok(dom.screenshot, "the harness took a screenshot while a percentage showed");
  assert.ok(
    percentIn(dom.screenshot.before) !== undefined && percentIn(dom.screenshot.after) !== undefined,
    `the status bar showed a percentage around the screenshot: ${JSON.stringify(dom.screenshot)}`,
  );
  step(`status bar progress checked; screenshot ${dom.screenshot.file}`);
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

    const live: Record<string, unknown> = {};
    seen.live = live;
    await checkLiveViews(api, result, step, live, spec.liveScreenshot);

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
    if (spec.statusProgress) {
      const progressSeen: Record<string, unknown> = {};
      seen.statusProgress = progressSeen;
      await checkStatusProgress(api, folder, spec.statusProgress, step, progressSeen);
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
