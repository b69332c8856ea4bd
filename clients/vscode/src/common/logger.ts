import * as vscode from "vscode";

/**
 * One log output channel for the extension and the language server's stderr, so a user reporting a
 * problem has a single place to copy from (ruff-vscode's logger.ts does the same).
 */
let channel: vscode.LogOutputChannel | undefined;

export function createLogger(): vscode.LogOutputChannel {
  channel = vscode.window.createOutputChannel("Ecco", { log: true });
  return channel;
}

export function logInfo(message: string): void {
  channel?.info(message);
}

export function logError(message: string, error?: unknown): void {
  const detail = error instanceof Error ? `: ${error.message}` : error === undefined ? "" : `: ${String(error)}`;
  channel?.error(`${message}${detail}`);
}

export function showLog(): void {
  channel?.show(true);
}
