import type {
  ControlAction,
  DaemonStatus,
  ExplainResult,
  RenderedState,
  TabSnapshot,
  WorkProgress,
} from "../shared/protocol";

/**
 * What `activate` returns: the extension's surface for other extensions and for the end-to-end test,
 * which drives the real command and reads the panel's state through the real webview messages.
 */
export interface EccoApi {
  /** Runs "Explain selection" on the active editor; rejects when the server fails. */
  explainSelection(): Promise<ExplainResult | undefined>;
  /** The current result (undefined before the first, or after its document changed). */
  currentResult(): ExplainResult | undefined;
  /** Asks the panel's page what it has drawn. */
  renderedState(): Promise<RenderedState>;
  /** Clicks or hovers a token in the panel as a user would; returns the tooltip text then shown. */
  probeToken(index: number, action: "click" | "hover"): Promise<string>;
  /** Opens a tab of the panel and acts on one of its controls as a user would (pick a layer, type watched
   * tokens and press Rank...); resolves with what the tab shows once the recompute's answer was drawn. */
  probeControl(tab: string, control: ControlAction, timeoutMs?: number): Promise<TabSnapshot>;
  /** The error lines written to the Ecco log so far (the last 100): the extension's, the panel's and the
   * language client's, which logs its failed requests and every line of the server's stderr as an error. */
  loggedErrors(): string[];
  /** The status bar item's text, the daemon status behind it, and the piece of work it shows, if any. */
  status(): { text: string; daemon: DaemonStatus | undefined; work: WorkProgress | undefined };
  /** Resolves once the language server runs (or failed to start). */
  serverReady(): Promise<boolean>;
  /** Restarts the language server (coalesced with restarts already running or queued). */
  restartServer(): Promise<void>;
  /** How many server processes were started so far. */
  serverStarts(): number;
}
