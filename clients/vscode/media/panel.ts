// The Explain panel's page logic: the ready handshake with the extension host, drawing results with the
// renderer bundle (loaded beside this script as the global EccoRender), and linking tokens both ways
// (a click in the panel reveals the text in the editor; the editor's cursor highlights the token here).
import type { Handle } from "../renderer/index";
import type { RenderOptions, StreamToken } from "../renderer/types";
import {
  type ControlAction,
  type Envelope,
  type ExplainResult,
  type ExplainedToken,
  type FromWebviewMessage,
  isEnvelope,
  MessageChannel,
  type ReadyReply,
  type RecomputeReply,
  type RenderedState,
  type TabSnapshot,
  type ToWebviewMessage,
} from "../shared/protocol";

interface VsCodeApi {
  postMessage(message: unknown): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
declare const EccoRender: {
  render(element: HTMLElement, view: string, data: unknown, options?: RenderOptions): Handle;
};

const LINKED_CLASS = "ecco-linked";
const REQUEST_EVENTS = ["request-layer-predictions", "request-nmf", "request-rankings-watch", "request-attention"];
/** A recompute runs the analysis again on the daemon (NMF, a new position): give it time. */
const RECOMPUTE_TIMEOUT_MS = 120_000;

const vscode = acquireVsCodeApi();
const nonce = document.querySelector<HTMLMetaElement>('meta[name="ecco-nonce"]')?.content;
const message = document.getElementById("ecco-message") as HTMLElement;
const progressBar = document.createElement("progress");
progressBar.className = "ecco-panel-progress";
progressBar.max = 100;
progressBar.hidden = true;
message.after(progressBar);
const root = document.getElementById("ecco-root") as HTMLElement;

let phase: RenderedState["phase"] = "empty";
let result: ExplainResult | null = null;
let handle: Handle | null = null;
let highlighted: number | null = null;
let errorMessage: string | null = null;
let loadingText = "";
let progress: RenderedState["progress"] = null;
/** True while the page itself selects a token, so the renderer's select event is not sent back. */
let selectingFromHost = false;
/** The recompute a view asked for last, until probeControl takes it to wait for its answer. */
let lastRecompute: Promise<"answered" | "failed"> | null = null;

const channel = new MessageChannel<FromWebviewMessage, ToWebviewMessage>(
  (envelope) => vscode.postMessage(envelope),
  (body) => answer(body),
);

window.addEventListener("message", (event: MessageEvent<unknown>) => {
  if (isEnvelope(event.data)) {
    void channel.receive(event.data as Envelope<ToWebviewMessage>);
  }
});
/** Content-Security-Policy violations seen on this page; the end-to-end test expects none. */
const cspViolations: string[] = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const what = `${event.violatedDirective} blocked ${event.blockedURI || "inline"}`;
  cspViolations.push(what);
  channel.notify({ type: "webviewError", message: `CSP: ${what}` });
});
window.addEventListener("error", (event) => channel.notify({ type: "webviewError", message: String(event.message) }));

async function answer(body: ToWebviewMessage): Promise<FromWebviewMessage | undefined> {
  switch (body.type) {
    case "showLoading":
      showMessage("loading", body.text);
      return undefined;
    case "showResult":
      showResult(body.result);
      return undefined;
    case "showError":
      showMessage("error", body.message);
      return undefined;
    case "showProgress":
      showProgress(body.message, body.percentage);
      return undefined;
    case "appendToken":
      appendToken(body.resultId, body.token);
      return undefined;
    case "highlightToken":
      highlight(body.index);
      return undefined;
    case "getRenderedState":
      return { type: "renderedState", state: renderedState() };
    case "probeToken":
      return { type: "probeReply", tooltip: await probe(body.index, body.action) };
    case "probeControl":
      return { type: "controlReply", shown: await probeControl(body.tab, body.control, body.timeoutMs) };
    case "readyReply":
    case "recomputeReply":
    case "ack":
      return undefined; // replies, matched by the channel
  }
}

function showMessage(next: "loading" | "error", text: string): void {
  phase = next;
  errorMessage = next === "error" ? text : null;
  loadingText = next === "loading" ? text : "";
  hideProgress();
  message.textContent = text;
  message.hidden = false;
  message.classList.toggle("ecco-panel-error", next === "error");
  document.body.setAttribute("aria-busy", String(next === "loading"));
}

/** The daemon's progress under the loading message: its words, and a bar once it is counted. */
function showProgress(text: string, percentage: number | null): void {
  if (phase !== "loading") {
    return;
  }
  progress = { message: text, percentage };
  message.textContent = `${loadingText} ${text}`;
  if (percentage === null) {
    progressBar.removeAttribute("value"); // indeterminate
  } else {
    progressBar.value = percentage;
  }
  progressBar.hidden = false;
}

function hideProgress(): void {
  progress = null;
  progressBar.hidden = true;
}

function showResult(next: ExplainResult): void {
  hideProgress();
  handle?.destroy();
  handle = null;
  result = next;
  highlighted = null;
  errorMessage = null;
  document.body.setAttribute("aria-busy", "false");
  try {
    handle = EccoRender.render(root, next.view.view, next.view.data, {
      ...(next.view.options as RenderOptions | undefined),
      theme: "auto",
      live: true,
      nonce,
      title: `${next.model} · ${next.tokens.filter((t) => !t.generated).length} tokens explained`,
    });
  } catch (error) {
    showMessage("error", `Cannot draw the result: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  phase = "result";
  message.hidden = true;
  const current = handle;
  // Tokens that streamed in before this page drew the result (or before it existed) are in the result's
  // token list but not in the renderer's data: append them now.
  const drawn = visibleBoxes().length;
  for (const token of next.tokens.slice(drawn)) {
    drawToken(token);
  }
  const onToken = (detail: Record<string, unknown>) => {
    if (!selectingFromHost && typeof detail.position === "number") {
      channel.notify({ type: "tokenClicked", index: detail.position });
    }
  };
  current.on("select-token", onToken);
  current.on("reveal-token", onToken);
  for (const event of REQUEST_EVENTS) {
    current.on(event, (detail) => {
      lastRecompute = recompute(current, next, event.slice("request-".length), detail);
    });
  }
}

/** Asks the host for a view's new data and draws it into the tab that asked (or the whole view); a refusal
 * (a watched text of several tokens, an unknown layer) is shown in that tab, in the host's words. */
async function recompute(
  asking: Handle,
  shown: ExplainResult,
  view: string,
  detail: Record<string, unknown>,
): Promise<"answered" | "failed"> {
  const tab = typeof detail.tab === "number" ? detail.tab : null;
  try {
    const reply = await channel.request<RecomputeReply>(
      { type: "recompute", resultId: shown.resultId, view, params: detail },
      RECOMPUTE_TIMEOUT_MS,
    );
    if (handle !== asking) {
      return "answered"; // a newer result replaced this one meanwhile
    }
    const spec = shown.view;
    if (tab !== null && spec.view === "tabs") {
      (spec.data as { tabs: { data: unknown }[] }).tabs[tab].data = reply.data;
      asking.updateTab(tab, reply.data);
    } else {
      spec.data = reply.data;
      asking.update(reply.data);
    }
    return "answered";
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    if (handle === asking) {
      asking.requestFailed(tab, text);
    }
    channel.notify({ type: "webviewError", message: `recompute ${view}: ${text}` });
    return "failed";
  }
}

function appendToken(resultId: string, token: ExplainedToken): void {
  if (!handle || result?.resultId !== resultId) {
    return;
  }
  result.tokens.push(token);
  drawToken(token);
}

function drawToken(token: ExplainedToken): void {
  if (!handle) {
    return;
  }
  const streamed: StreamToken = {
    text: token.text,
    is_input: !token.generated,
    prob: token.probability,
    rank: token.rank,
    top: token.alternatives.map((a) => ({ text: a.token, prob: a.probability })),
  };
  try {
    handle.appendToken(streamed);
  } catch (error) {
    channel.notify({
      type: "webviewError",
      message: `appendToken: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
}

/** Token boxes of the view on show (the visible tab when there are several), by position. */
function visibleBoxes(): HTMLElement[] {
  const strips = Array.from(root.querySelectorAll<HTMLElement>(".ecco-tokens")).filter(
    (strip) => strip.closest("[hidden]") === null,
  );
  const strip = strips[0];
  return strip ? Array.from(strip.querySelectorAll<HTMLElement>(".ecco-token[data-position]")) : [];
}

function highlight(index: number | null): void {
  highlighted = index;
  for (const box of root.querySelectorAll(`.${LINKED_CLASS}`)) {
    box.classList.remove(LINKED_CLASS);
  }
  if (index === null) {
    return;
  }
  selectingFromHost = true;
  try {
    handle?.select(index);
  } finally {
    selectingFromHost = false;
  }
  const boxes = root.querySelectorAll<HTMLElement>(`.ecco-token[data-position="${index}"]`);
  boxes.forEach((box) => box.classList.add(LINKED_CLASS));
  visibleBoxes()[index]?.scrollIntoView({ block: "nearest", inline: "nearest" });
}

function renderedState(): RenderedState {
  const boxes = visibleBoxes();
  return {
    phase,
    resultId: result?.resultId ?? null,
    tokenCount: boxes.length,
    tokenTexts: boxes.map((box) => box.querySelector(".ecco-text")?.textContent ?? ""),
    highlightedIndex: highlighted,
    views: Array.from(root.querySelectorAll<HTMLElement>("[role=tab][data-view], .ecco-root[data-view]")).map(
      (el) => el.dataset.view ?? "",
    ),
    errorMessage,
    progress,
    cspViolations: [...cspViolations],
    themeKind: document.body.dataset.vscodeThemeKind ?? "",
  };
}

/** Clicks or hovers a token's box as a user's pointer would, then reads the tooltip that shows. */
async function probe(index: number, action: "click" | "hover"): Promise<string> {
  const box = visibleBoxes()[index];
  if (!box) {
    throw new Error(`no token box at position ${index} (${visibleBoxes().length} shown)`);
  }
  box.scrollIntoView({ block: "nearest" });
  if (action === "click") {
    box.click();
  } else {
    box.dispatchEvent(new MouseEvent("mouseenter", { bubbles: false }));
    box.dispatchEvent(new MouseEvent("mouseover", { bubbles: true }));
  }
  await new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));
  const tooltip = Array.from(root.querySelectorAll<HTMLElement>(".ecco-tooltip")).find((el) => !el.hidden);
  return tooltip?.textContent ?? "";
}

/** Returns the recompute a view asked for since the last call, and forgets it. */
function takeRecompute(): Promise<"answered" | "failed"> | null {
  const taken = lastRecompute;
  lastRecompute = null;
  return taken;
}

/**
 * Opens the tab titled `title` and acts on one of its controls as a user would (the events a user's input
 * fires), waits for the host's answer to the recompute that asked for, if any, and reports what the tab shows.
 */
async function probeControl(title: string, control: ControlAction, timeoutMs: number): Promise<TabSnapshot> {
  const tabs = Array.from(root.querySelectorAll<HTMLElement>("[role=tab]"));
  const index = tabs.findIndex((tab) => tab.textContent === title);
  const panel = root.querySelectorAll<HTMLElement>("[role=tabpanel]")[index];
  if (index < 0 || !panel) {
    throw new Error(`no tab "${title}" (tabs: ${tabs.map((tab) => tab.textContent).join(", ")})`);
  }
  tabs[index].click();
  takeRecompute();
  act(panel, control);
  const asked = takeRecompute();
  let recomputed: TabSnapshot["recompute"] = "none";
  if (asked) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs)));
    recomputed = await Promise.race([asked, late]);
    clearTimeout(timer);
  }
  await new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));
  return snapshot(title, panel, recomputed);
}

function act(panel: HTMLElement, control: ControlAction): void {
  const labelled = (el: Element, label: string) =>
    el.getAttribute("aria-label") === label || el.closest("label")?.firstChild?.textContent?.trim() === label;
  switch (control.action) {
    case "show":
      return;
    case "select": {
      const select = Array.from(panel.querySelectorAll("select")).find((el) => labelled(el, control.label));
      if (!select || !Array.from(select.options).some((option) => option.value === control.value)) {
        throw new Error(`no select "${control.label}" with the option ${control.value}`);
      }
      select.value = control.value;
      select.dispatchEvent(new Event("change", { bubbles: true }));
      return;
    }
    case "fill-and-click": {
      const field = Array.from(panel.querySelectorAll("input, textarea")).find((el) => labelled(el, control.label));
      const button = Array.from(panel.querySelectorAll("button")).find(
        (el) => el.textContent?.trim() === control.button,
      );
      if (!(field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement) || !button) {
        throw new Error(`no field "${control.label}" or no button "${control.button}"`);
      }
      field.focus();
      field.value = control.value;
      field.dispatchEvent(new Event("input", { bubbles: true }));
      button.click();
      return;
    }
    case "click-token": {
      const box = panel.querySelector<HTMLElement>(`.ecco-token[data-position="${control.position}"]`);
      if (!box) {
        throw new Error(`no token box at position ${control.position}`);
      }
      box.click();
      return;
    }
  }
}

function snapshot(title: string, panel: HTMLElement, recomputed: TabSnapshot["recompute"]): TabSnapshot {
  const texts = (selector: string) =>
    Array.from(panel.querySelectorAll<HTMLElement>(selector)).map((el) => el.textContent ?? "");
  const table = panel.querySelector("table");
  return {
    tab: title,
    view: panel.dataset.view ?? "",
    recompute: recomputed,
    selects: Object.fromEntries(
      Array.from(panel.querySelectorAll("select")).map((select) => [
        select.getAttribute("aria-label") ?? "",
        select.selectedOptions[0]?.textContent ?? "",
      ]),
    ),
    notes: texts(".ecco-note"),
    alerts: texts("[role=alert]"),
    columns: table ? Array.from(table.querySelectorAll("thead th")).map((th) => th.textContent ?? "") : [],
    rows: table?.querySelectorAll("tbody tr").length ?? 0,
    lines: panel.querySelectorAll("svg line").length,
    weights: Array.from(panel.querySelectorAll<HTMLElement>("[data-weight]"))
      .filter((el) => el.dataset.weight)
      .map((el) => Number(el.dataset.weight)),
  };
}

// The handshake: the host answers with what the panel showed before this page existed.
void channel
  .request<ReadyReply>({ type: "ready" }, 30_000)
  .then(async (reply) => {
    if (reply.last) {
      await answer(reply.last);
    }
  })
  .catch((error: unknown) => showMessage("error", `The extension did not answer: ${String(error)}`));
