/**
 * Messages between the extension host and the Explain webview, and the result shapes the language
 * server returns. Both sides import this file, so a renamed field fails to compile on both.
 *
 * Layout follows vscode-hexeditor's shared/protocol.ts (discriminated unions, request/reply by message
 * id); unlike it, a request here is rejected when the other side answers with an error and when no
 * answer arrives before its timeout, so no caller waits forever.
 */

/** A zero-based line/character position as LSP sends it (characters in UTF-16 code units). */
export interface LspPosition {
  line: number;
  character: number;
}

export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** One alternative the model considered at a position. */
export interface Alternative {
  token: string;
  probability: number;
}

/** One token of an explained selection, with where it sits in the document. */
export interface ExplainedToken {
  index: number;
  text: string;
  /** Where the token's text lies in the document; null for tokens with no text there (BOS, generated). */
  range: LspRange | null;
  /** Probability of this token given the ones before it; null for the first token. */
  probability: number | null;
  rank: number | null;
  alternatives: Alternative[];
  generated: boolean;
}

/** What the renderer bundle draws: `EccoRender.render(element, view, data, options)`. */
export interface RenderSpec {
  view: string;
  data: unknown;
  options?: Record<string, unknown>;
}

/** What the language server's `ecco.explain` command returns. */
export interface ExplainResult {
  resultId: string;
  uri: string;
  range: LspRange;
  model: string;
  tokens: ExplainedToken[];
  /** The renderer's view (usually "tabs" of probability, saliency, layer predictions...), drawn as is. */
  view: RenderSpec;
}

/** Options the extension sends with `ecco.explain`, from the user's settings. */
export interface ExplainOptions {
  model: string;
  attribution: string[];
  generate: number;
  /** A token to contrast every explained token with ("why X rather than this?"): the saliency is then the
   * contrastive method alone. Absent or empty: off. It must be one token of the model, else BAD_REQUEST. */
  foil?: string;
}

/** Parameters of the `ecco/status` notification the language server sends. */
export interface DaemonStatus {
  connected: boolean;
  address?: string;
  model?: string | null;
  /** 1-based position of this user's oldest queued job; null or absent when nothing waits. */
  queuePosition?: number | null;
  message?: string | null;
}

/**
 * Parameters of the `ecco/progress` notification: the language server's `$/progress` for one piece of
 * daemon work (queue position, done of total, time left), for the panel and the status bar.
 */
export interface WorkProgress {
  id: string;
  title: string;
  message: string;
  /** 0 to 100; null while the work is not counted (queued, loading). */
  percentage: number | null;
  done: boolean;
}

/** Parameters of the `ecco/token` notification: one streamed continuation token. */
export interface StreamedToken {
  resultId: string;
  token: ExplainedToken;
}

/** What the webview reports it has drawn; the end-to-end test asserts on it. */
export interface RenderedState {
  phase: "empty" | "loading" | "result" | "error";
  resultId: string | null;
  tokenCount: number;
  tokenTexts: string[];
  highlightedIndex: number | null;
  views: string[];
  errorMessage: string | null;
  /** The progress shown while loading: its message and percentage (null when none came). */
  progress: { message: string; percentage: number | null } | null;
  cspViolations: string[];
  themeKind: string;
}

// ---- host -> webview ----

export interface ReadyReply {
  type: "readyReply";
  /** What the panel showed before this page loaded (it was hidden and disposed), to draw again. */
  last: ShowLoading | ShowResult | ShowError | null;
}
export interface ShowLoading {
  type: "showLoading";
  text: string;
}
export interface ShowResult {
  type: "showResult";
  result: ExplainResult;
}
export interface ShowError {
  type: "showError";
  message: string;
}
/** The daemon's progress on the work the panel waits for; drawn only while it shows "loading". */
export interface ShowProgress {
  type: "showProgress";
  message: string;
  percentage: number | null;
}
export interface AppendToken {
  type: "appendToken";
  resultId: string;
  token: ExplainedToken;
}
export interface HighlightToken {
  type: "highlightToken";
  index: number | null;
}
export interface GetRenderedState {
  type: "getRenderedState";
}
/** Acts on a token's element as a user would (click, hover); the reply says what then showed. */
export interface ProbeToken {
  type: "probeToken";
  index: number;
  action: "click" | "hover";
}
/** How a probe acts on a tab's control: "show" only opens the tab; "select" sets the <select> labelled `label`
 * (its change event fires); "fill-and-click" types into the field labelled `label` and clicks `button`;
 * "click-token" clicks the tab's token box at `position`. */
export type ControlAction =
  | { action: "show" }
  | { action: "select"; label: string; value: string }
  | { action: "fill-and-click"; label: string; value: string; button: string }
  | { action: "click-token"; position: number };
/**
 * Test-only, like ProbeToken: opens the tab titled `tab`, acts on one of its controls as a user would, waits
 * (up to `timeoutMs`) until the view drew the host's answer to the recompute this asked for, if any, and
 * replies with what the tab then shows.
 */
export interface ProbeControl {
  type: "probeControl";
  tab: string;
  control: ControlAction;
  timeoutMs: number;
}
/** What one tab of the panel shows (ControlReply). */
export interface TabSnapshot {
  tab: string;
  view: string;
  /** Whether the action asked the host to recompute, and whether its answer (or refusal) was drawn in time. */
  recompute: "none" | "answered" | "failed" | "timeout";
  /** Each <select>'s label and the text of its chosen option. */
  selects: Record<string, string>;
  /** Texts of the view's notes (the pending "computing…" ones included) and of its alerts. */
  notes: string[];
  alerts: string[];
  /** The first table's column headers and its number of body rows; empty and 0 when none. */
  columns: string[];
  rows: number;
  /** Lines drawn in the view's charts (attention lines), and the weights it paints on its tokens. */
  lines: number;
  weights: number[];
}
export interface RecomputeReply {
  type: "recomputeReply";
  data: unknown;
}
export interface Ack {
  type: "ack";
}

export type ToWebviewMessage =
  | ReadyReply
  | ShowLoading
  | ShowResult
  | ShowError
  | ShowProgress
  | AppendToken
  | HighlightToken
  | GetRenderedState
  | ProbeToken
  | ProbeControl
  | RecomputeReply
  | Ack;

// ---- webview -> host ----

export interface ReadyRequest {
  type: "ready";
}
export interface TokenClicked {
  type: "tokenClicked";
  index: number;
}
/** A view asks for data computed anew from the stored result (layer predictions at another position, NMF with k factors). */
export interface RecomputeRequest {
  type: "recompute";
  resultId: string;
  /** The renderer's request name without "request-": "layer-predictions", "nmf", "rankings-watch", "attention". */
  view: string;
  params: Record<string, unknown>;
}
export interface RenderedStateReply {
  type: "renderedState";
  state: RenderedState;
}
export interface ProbeReply {
  type: "probeReply";
  /** The visible tooltip text after the action, "" when none showed. */
  tooltip: string;
}
export interface ControlReply {
  type: "controlReply";
  shown: TabSnapshot;
}
export interface WebviewError {
  type: "webviewError";
  message: string;
}

export type FromWebviewMessage =
  ReadyRequest | TokenClicked | RecomputeRequest | RenderedStateReply | ProbeReply | ControlReply | WebviewError | Ack;

/** The envelope every postMessage carries. */
export interface Envelope<T> {
  messageId: number;
  /** Set on replies: the messageId of the request answered. */
  inReplyTo?: number;
  /** Set on failed replies instead of a useful body. */
  error?: string;
  body: T;
}

export class RequestTimeoutError extends Error {
  constructor(what: string, ms: number) {
    super(`no reply to ${what} within ${ms} ms`);
    this.name = "RequestTimeoutError";
  }
}

interface Pending<T> {
  resolve: (body: T) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * postMessage RPC for one side of the channel: events, requests that resolve with the reply, reject on
 * an error reply, on timeout or on dispose, and replies to the other side's requests.
 */
export class MessageChannel<TOut extends { type: string }, TIn extends { type: string }> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending<TIn>>();

  constructor(
    private readonly post: (message: Envelope<TOut>) => void,
    /** Answers the other side's messages; a returned body becomes the reply, a throw an error reply. */
    private readonly handle: (body: TIn) => Promise<TOut | undefined> | TOut | undefined,
    private readonly defaultTimeoutMs = 10_000,
  ) {}

  /** Sends a message that expects no reply. */
  notify(body: TOut): void {
    this.post({ messageId: this.nextId++, body });
  }

  /** Sends a request; the promise settles with the reply, an error reply, a timeout or dispose. */
  request<R extends TIn>(body: TOut, timeoutMs = this.defaultTimeoutMs): Promise<R> {
    const messageId = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(messageId);
        reject(new RequestTimeoutError(body.type, timeoutMs));
      }, timeoutMs);
      this.pending.set(messageId, { resolve: resolve as (b: TIn) => void, reject, timer });
      try {
        this.post({ messageId, body });
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(messageId);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  }

  /** Feeds one received message in: settles a pending request or answers the other side. */
  async receive(message: Envelope<TIn>): Promise<void> {
    if (message.inReplyTo !== undefined) {
      const waiting = this.pending.get(message.inReplyTo);
      if (!waiting) {
        return; // already timed out or disposed
      }
      this.pending.delete(message.inReplyTo);
      clearTimeout(waiting.timer);
      if (message.error !== undefined) {
        waiting.reject(new Error(message.error));
      } else {
        waiting.resolve(message.body);
      }
      return;
    }
    let reply: TOut | undefined;
    try {
      reply = await this.handle(message.body);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      this.post({ messageId: this.nextId++, inReplyTo: message.messageId, error: text, body: { type: "ack" } as TOut });
      return;
    }
    if (reply !== undefined) {
      this.post({ messageId: this.nextId++, inReplyTo: message.messageId, body: reply });
    }
  }

  /** Rejects every pending request: the other side is gone. */
  dispose(reason = "channel closed"): void {
    for (const [id, waiting] of this.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error(reason));
      this.pending.delete(id);
    }
  }
}

/** Checks that a value is an envelope before it is trusted as one. */
export function isEnvelope(value: unknown): value is Envelope<{ type: string }> {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const candidate = value as { messageId?: unknown; body?: unknown };
  const body = candidate.body as { type?: unknown } | undefined;
  return typeof candidate.messageId === "number" && typeof body === "object" && typeof body?.type === "string";
}
