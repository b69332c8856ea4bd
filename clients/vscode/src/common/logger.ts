import * as vscode from "vscode";

/**
 * One log output channel for the extension and the language server's stderr, so a user reporting a
 * problem has a single place to copy from (ruff-vscode's logger.ts does the same).
 */
let channel: vscode.LogOutputChannel | undefined;
/** Error lines written to the channel, by anyone who holds it (the language client too); the last 100. */
const errors: string[] = [];

export function createLogger(): vscode.LogOutputChannel {
  channel = keepingErrors(vscode.window.createOutputChannel("Ecco", { log: true }));
  return channel;
}

/** The channel, with its error lines also kept in `errors`. A proxy of an empty object: the channel itself
 * may be frozen, and a proxy may not change what a frozen object's property reads. */
function keepingErrors(target: vscode.LogOutputChannel): vscode.LogOutputChannel {
  const error = (message: string | Error, ...args: unknown[]): void => {
    errors.push(message instanceof Error ? message.message : message);
    errors.splice(0, errors.length - 100);
    target.error(message, ...args);
  };
  return new Proxy({} as vscode.LogOutputChannel, {
    get(_, key) {
      if (key === "error") {
        return error;
      }
      const value: unknown = Reflect.get(target, key);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The error lines logged so far (the last 100). */
export function loggedErrors(): string[] {
  return [...errors];
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
