import * as vscode from "vscode";
import type { DaemonStatus, WorkProgress } from "../../shared/protocol";

export type ServerState = "starting" | "running" | "stopped" | "failed";

/**
 * The status bar item: whether the language server runs, whether it reaches the daemon, the model in
 * use, this user's queue position while a job waits, and how far running work has got. Fed by the
 * server's `ecco/status` and `ecco/progress` notifications.
 */
export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private server: ServerState = "stopped";
  private daemon: DaemonStatus | undefined;
  private readonly works = new Map<string, WorkProgress>();

  constructor() {
    this.item = vscode.window.createStatusBarItem("ecco.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "Ecco";
    this.item.command = "ecco.showLog";
    this.render();
    this.item.show();
  }

  setServerState(state: ServerState): void {
    this.server = state;
    if (state !== "running") {
      this.daemon = undefined;
    }
    this.render();
  }

  setDaemonStatus(status: DaemonStatus): void {
    this.daemon = status;
    this.render();
  }

  /** One piece of daemon work began, advanced or ended; the latest running one is shown. */
  setWork(progress: WorkProgress): void {
    this.works.delete(progress.id);
    if (!progress.done) {
      this.works.set(progress.id, progress);
    }
    this.render();
  }

  /** What the item shows now; tests and the log read it. */
  get text(): string {
    return this.item.text;
  }

  get daemonStatus(): DaemonStatus | undefined {
    return this.daemon;
  }

  /** The piece of work the item shows now (its percentage is in the text), if any. */
  get shownWork(): WorkProgress | undefined {
    return this.server === "running" && this.daemon?.connected ? [...this.works.values()].pop() : undefined;
  }

  private render(): void {
    const { text, tooltip, warning } = describe(this.server, this.daemon);
    const work = this.shownWork;
    this.item.text = work ? `$(sync~spin) ${text.replace(/^\$\([^)]*\) /, "")}${workText(work)}` : text;
    this.item.tooltip = work ? `${tooltip}\n${work.title}: ${work.message}` : tooltip;
    this.item.backgroundColor = warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}

function workText(work: WorkProgress): string {
  return work.percentage === null ? " · working" : ` · ${work.percentage}%`;
}

function describe(
  server: ServerState,
  daemon: DaemonStatus | undefined,
): { text: string; tooltip: string; warning: boolean } {
  if (server === "starting") {
    return { text: "$(sync~spin) Ecco", tooltip: "Ecco: starting the language server", warning: false };
  }
  if (server === "failed") {
    return { text: "$(error) Ecco", tooltip: "Ecco: the language server failed to start; see the log", warning: true };
  }
  if (server === "stopped") {
    return { text: "$(circle-slash) Ecco", tooltip: "Ecco: the language server is stopped", warning: false };
  }
  if (!daemon) {
    return { text: "$(circle-outline) Ecco", tooltip: "Ecco: waiting for the daemon's status", warning: false };
  }
  const where = daemon.address ? ` at ${daemon.address}` : "";
  if (!daemon.connected) {
    const why = daemon.message ? `: ${daemon.message}` : "";
    return {
      text: "$(debug-disconnect) Ecco: no daemon",
      tooltip: `Ecco: daemon unreachable${where}${why}`,
      warning: true,
    };
  }
  const model = daemon.model ?? "no model";
  const queue = daemon.queuePosition ? ` · queue ${daemon.queuePosition}` : "";
  return {
    text: `$(pulse) Ecco: ${model}${queue}`,
    tooltip: `Ecco: connected to the daemon${where}; model ${model}${queue ? `; position ${daemon.queuePosition} in the queue` : ""}`,
    warning: false,
  };
}
