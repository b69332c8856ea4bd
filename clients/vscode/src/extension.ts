import * as vscode from "vscode";
import type { EccoApi } from "./api";
import { createLogger, loggedErrors, logError, showLog } from "./common/logger";
import { onPythonInterpreterChanged } from "./common/python";
import { ServerLifecycle } from "./common/server";
import { needsRestart } from "./common/settings";
import { StatusBar } from "./common/status";
import { Explainer } from "./explain";
import { EXPLAIN_VIEW_ID, ExplainViewProvider } from "./panel/explainViewProvider";

let lifecycle: ServerLifecycle | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<EccoApi> {
  const output = createLogger();
  const status = new StatusBar();
  let explainer: Explainer | undefined;
  let panel: ExplainViewProvider | undefined;
  lifecycle = new ServerLifecycle({
    status,
    output,
    onToken: (token) => explainer?.appendToken(token),
    onProgress: (progress) => panel?.showProgress(progress),
  });
  const server = lifecycle;
  panel = new ExplainViewProvider(context.extensionUri, {
    onTokenClicked: (index) => void explainer?.revealToken(index),
    onRecompute: (resultId, view, params) => explainer!.recompute(resultId, view, params),
  });
  explainer = new Explainer(server, panel);
  const activeExplainer = explainer;
  const activePanel = panel;

  context.subscriptions.push(
    output,
    status,
    server,
    activePanel,
    activeExplainer,
    vscode.window.registerWebviewViewProvider(EXPLAIN_VIEW_ID, activePanel, {
      webviewOptions: { retainContextWhenHidden: true },
    }),
    vscode.commands.registerCommand("ecco.explainSelection", async () => {
      try {
        await activeExplainer.explainSelection();
      } catch {
        // Already shown to the user and logged by the explainer.
      }
    }),
    vscode.commands.registerCommand("ecco.explainAgainstFoil", async () => {
      const foil = await vscode.window.showInputBox({
        title: "Ecco: explain the selection against a foil",
        prompt: "A token the model could have written instead (one token; mind the leading space, e.g. ' Berlin')",
        value: vscode.workspace.getConfiguration("ecco").get<string>("contrastiveFoil", ""),
        validateInput: (value) => (value ? undefined : "type the foil token"),
      });
      if (!foil) {
        return; // dismissed
      }
      try {
        await activeExplainer.explainSelection(vscode.window.activeTextEditor, foil);
      } catch {
        // Already shown to the user and logged by the explainer.
      }
    }),
    vscode.commands.registerCommand("ecco.restartServer", () => server.restart()),
    vscode.commands.registerCommand("ecco.showLog", () => showLog()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (needsRestart(event)) {
        void server.restart();
      }
    }),
    await onPythonInterpreterChanged(() => {
      if (!vscode.workspace.getConfiguration("ecco").get<string>("pythonPath")) {
        void server.restart();
      }
    }),
  );

  const started = server.restart().catch((error: unknown) => logError("starting the language server", error));

  return {
    explainSelection: () => activeExplainer.explainSelection(),
    currentResult: () => activeExplainer.result,
    renderedState: () => activePanel.renderedState(),
    probeToken: (index, action) => activePanel.probeToken(index, action),
    probeControl: (tab, control, timeoutMs = 30_000) => activePanel.probeControl(tab, control, timeoutMs),
    loggedErrors,
    status: () => ({ text: status.text, daemon: status.daemonStatus, work: status.shownWork }),
    restartServer: () => server.restart(),
    serverStarts: () => server.starts,
    serverReady: async () => {
      await started;
      return (await server.running()) !== undefined;
    },
  };
}

export async function deactivate(): Promise<void> {
  const stopping = lifecycle?.stop();
  lifecycle = undefined;
  await stopping;
}
