import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import type { DaemonStatus, StreamedToken, WorkProgress } from "../../shared/protocol";
import { logError, logInfo } from "./logger";
import { resolveInterpreter } from "./python";
import { readSettings } from "./settings";
import type { StatusBar } from "./status";

export const SERVER_MODULE = "ecco_client.lsp";

export interface ServerHooks {
  status: StatusBar;
  output: vscode.LogOutputChannel;
  onToken(token: StreamedToken): void;
  onProgress(progress: WorkProgress): void;
}

/**
 * Owns the language client. Restarts are coalesced as in ruff-vscode's extension.ts: while one restart
 * runs, any number of further requests become a single queued restart, which then reads the latest
 * settings; nobody starts two servers at once.
 */
export class ServerLifecycle implements vscode.Disposable {
  private client: LanguageClient | undefined;
  private inFlight: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  /** How many times a server process was started; restarts that were coalesced don't count. */
  starts = 0;

  constructor(private readonly hooks: ServerHooks) {}

  restart(): Promise<void> {
    if (this.queued) {
      return this.queued;
    }
    if (this.inFlight) {
      logInfo("restart requested while one runs; queuing one more");
      this.queued = this.inFlight
        .catch(() => undefined)
        .then(() => {
          this.queued = undefined;
          return this.restartNow();
        });
      return this.queued;
    }
    return this.restartNow();
  }

  /** The running client, after any restart in progress; undefined when the server could not start. */
  async running(): Promise<LanguageClient | undefined> {
    await (this.queued ?? this.inFlight)?.catch(() => undefined);
    return this.client?.state === State.Running ? this.client : undefined;
  }

  /** Runs one of the server's `workspace/executeCommand` commands; arguments travel as a list. */
  async executeCommand<T>(command: string, args: unknown[], token?: vscode.CancellationToken): Promise<T> {
    const client = await this.running();
    if (!client) {
      throw new Error("the Ecco language server is not running (see the Ecco log)");
    }
    return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args }, token)) as T;
  }

  private restartNow(): Promise<void> {
    this.inFlight = this.stopThenStart().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async stopThenStart(): Promise<void> {
    await this.stop();
    this.starts++;
    const settings = readSettings();
    const python = await resolveInterpreter(settings.pythonPath, vscode.workspace.workspaceFolders?.[0]?.uri);
    this.hooks.status.setServerState("starting");
    logInfo(`starting ${python} -m ${SERVER_MODULE}`);
    const serverOptions: ServerOptions = {
      command: python,
      args: ["-m", SERVER_MODULE],
      transport: TransportKind.stdio,
      options: { env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.hooks.output,
      traceOutputChannel: this.hooks.output,
      synchronize: { configurationSection: "ecco" },
      initializationOptions: { settings },
    };
    const client = new LanguageClient("ecco", "Ecco", serverOptions, clientOptions);
    client.onNotification("ecco/status", (status: DaemonStatus) => this.hooks.status.setDaemonStatus(status));
    client.onNotification("ecco/token", (token: StreamedToken) => this.hooks.onToken(token));
    client.onNotification("ecco/progress", (progress: WorkProgress) => {
      this.hooks.status.setWork(progress);
      this.hooks.onProgress(progress);
    });
    client.onDidChangeState((event) => {
      if (event.newState === State.Stopped && this.client === client) {
        this.hooks.status.setServerState("stopped");
      }
    });
    this.client = client;
    try {
      await client.start();
      this.hooks.status.setServerState("running");
    } catch (error) {
      this.hooks.status.setServerState("failed");
      logError(`could not start the language server with ${python}`, error);
      void vscode.window
        .showErrorMessage(
          `Ecco: could not start the language server with ${python}. Install ecco-client there or set ecco.pythonPath.`,
          "Open settings",
          "Show log",
        )
        .then((choice) => {
          if (choice === "Open settings") {
            void vscode.commands.executeCommand("workbench.action.openSettings", "ecco.pythonPath");
          } else if (choice === "Show log") {
            this.hooks.output.show(true);
          }
        });
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) {
      return;
    }
    try {
      await client.dispose(5_000);
    } catch (error) {
      logError("stopping the language server", error);
    }
    this.hooks.status.setServerState("stopped");
  }

  dispose(): void {
    void this.stop();
  }
}
