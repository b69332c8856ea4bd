import * as vscode from "vscode";
import {
  type ControlAction,
  type ControlReply,
  type Envelope,
  type ExplainResult,
  type ExplainedToken,
  type FromWebviewMessage,
  isEnvelope,
  MessageChannel,
  type ProbeReply,
  type RenderedState,
  type RenderedStateReply,
  type ShowError,
  type ShowLoading,
  type ShowResult,
  type TabSnapshot,
  type ToWebviewMessage,
  type WorkProgress,
} from "../../shared/protocol";
import { logError } from "../common/logger";
import { createNonce, explainPanelHtml } from "./html";

export const EXPLAIN_VIEW_ID = "ecco.explainView";

/** How long a webview gets to load and say it is ready, and to answer a request. */
const READY_TIMEOUT_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface PanelEvents {
  onTokenClicked(index: number): void;
  onRecompute(resultId: string, view: string, params: Record<string, unknown>): Promise<unknown>;
}

/**
 * The Explain side panel (a WebviewView). It keeps what it last showed so a page that was disposed while
 * hidden draws the same thing again after the ready handshake, and it only posts to a page that said it
 * is ready.
 */
export class ExplainViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  private view: vscode.WebviewView | undefined;
  private channel: MessageChannel<ToWebviewMessage, FromWebviewMessage> | undefined;
  private ready: Promise<void> | undefined;
  private markReady: (() => void) | undefined;
  private isReady = false;
  private last: ShowLoading | ShowResult | ShowError | null = null;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly events: PanelEvents,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.isReady = false;
    this.ready = new Promise<void>((resolve) => (this.markReady = resolve));
    view.webview.options = {
      enableScripts: true,
      localResourceRoots: [
        vscode.Uri.joinPath(this.extensionUri, "out", "media"),
        vscode.Uri.joinPath(this.extensionUri, "media"),
      ],
    };
    const channel = new MessageChannel<ToWebviewMessage, FromWebviewMessage>(
      (message) => void view.webview.postMessage(message),
      (body) => this.handle(body),
      REQUEST_TIMEOUT_MS,
    );
    this.channel = channel;
    this.disposables.push(
      view.webview.onDidReceiveMessage((message: unknown) => {
        if (isEnvelope(message)) {
          void channel.receive(message as Envelope<FromWebviewMessage>);
        }
      }),
      view.onDidDispose(() => {
        channel.dispose("the Explain panel was closed");
        if (this.view === view) {
          this.view = undefined;
          this.channel = undefined;
          this.ready = undefined;
          this.isReady = false;
        }
      }),
    );
    view.webview.html = explainPanelHtml(view.webview, this.extensionUri, createNonce());
  }

  /** Makes the panel visible, creating it if needed, without taking focus from the editor. */
  async reveal(): Promise<void> {
    if (this.view) {
      this.view.show(true);
    } else {
      await vscode.commands.executeCommand(`${EXPLAIN_VIEW_ID}.focus`);
      // Focusing the view created it; give focus back to the text the user works in.
      await vscode.commands.executeCommand("workbench.action.focusActiveEditorGroup");
    }
  }

  showLoading(text: string): void {
    this.show({ type: "showLoading", text });
  }

  /** The daemon's progress, drawn while the panel shows "loading" (the work it waits for). */
  showProgress(progress: WorkProgress): void {
    if (this.last?.type === "showLoading" && !progress.done) {
      this.post({ type: "showProgress", message: progress.message, percentage: progress.percentage });
    }
  }

  showResult(result: ExplainResult): void {
    this.show({ type: "showResult", result });
  }

  showError(message: string): void {
    this.show({ type: "showError", message });
  }

  appendToken(resultId: string, token: ExplainedToken): void {
    if (this.last?.type === "showResult" && this.last.result.resultId === resultId) {
      this.last.result.tokens.push(token);
    }
    this.post({ type: "appendToken", resultId, token });
  }

  highlight(index: number | null): void {
    this.post({ type: "highlightToken", index });
  }

  /** Asks the page what it has drawn (the end-to-end test's window into the webview). */
  async renderedState(): Promise<RenderedState> {
    const channel = await this.whenReady();
    const reply = await channel.request<RenderedStateReply>({ type: "getRenderedState" });
    return reply.state;
  }

  /** Clicks or hovers a token's element in the page as a user would; returns the tooltip then shown. */
  async probeToken(index: number, action: "click" | "hover"): Promise<string> {
    const channel = await this.whenReady();
    const reply = await channel.request<ProbeReply>({ type: "probeToken", index, action });
    return reply.tooltip;
  }

  /** Acts on a control of a tab in the page as a user would (test-only); returns what the tab then shows, once
   * the host's answer to the recompute it asked for was drawn or `timeoutMs` passed. */
  async probeControl(tab: string, control: ControlAction, timeoutMs: number): Promise<TabSnapshot> {
    const channel = await this.whenReady();
    const reply = await channel.request<ControlReply>(
      { type: "probeControl", tab, control, timeoutMs },
      timeoutMs + REQUEST_TIMEOUT_MS,
    );
    return reply.shown;
  }

  private show(message: ShowLoading | ShowResult | ShowError): void {
    this.last = message;
    this.post(message);
  }

  /** Posts to a ready page only; a page that is not ready yet gets the last state in its handshake reply. */
  private post(message: ToWebviewMessage): void {
    if (this.isReady) {
      this.channel?.notify(message);
    }
  }

  private async whenReady(): Promise<MessageChannel<ToWebviewMessage, FromWebviewMessage>> {
    if (!this.view) {
      await this.reveal();
    }
    const ready = this.ready;
    if (!ready) {
      throw new Error("the Explain panel is not open");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the Explain panel did not load within ${READY_TIMEOUT_MS} ms`)),
        READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (!this.channel) {
      throw new Error("the Explain panel was closed");
    }
    return this.channel;
  }

  private async handle(body: FromWebviewMessage): Promise<ToWebviewMessage | undefined> {
    switch (body.type) {
      case "ready":
        this.isReady = true;
        this.markReady?.();
        return { type: "readyReply", last: this.last };
      case "tokenClicked":
        this.events.onTokenClicked(body.index);
        return undefined;
      case "recompute":
        return { type: "recomputeReply", data: await this.events.onRecompute(body.resultId, body.view, body.params) };
      case "webviewError":
        logError(`Explain panel: ${body.message}`);
        return undefined;
      case "renderedState":
      case "probeReply":
      case "controlReply":
      case "ack":
        return undefined; // replies, matched by MessageChannel; never requests
    }
  }

  dispose(): void {
    this.channel?.dispose("the extension is shutting down");
    for (const disposable of this.disposables) {
      disposable.dispose();
    }
  }
}
