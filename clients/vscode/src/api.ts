import type { DaemonStatus, ExplainResult, RenderedState, WorkProgress } from "../shared/protocol";

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
  /** The status bar item's text, the daemon status behind it, and the piece of work it shows, if any. */
  status(): { text: string; daemon: DaemonStatus | undefined; work: WorkProgress | undefined };
  /** Resolves once the language server runs (or failed to start). */
  serverReady(): Promise<boolean>;
  /** Restarts the language server (coalesced with restarts already running or queued). */
  restartServer(): Promise<void>;
  /** How many server processes were started so far. */
  serverStarts(): number;
}
