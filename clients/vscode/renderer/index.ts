// EccoRender: the one entry point of the bundle, a global in Jupyter, exported HTML and the webview.
//   const handle = EccoRender.render(element, "saliency", data, { theme: "auto" });
//   handle.on("select-token", (d) => ...); handle.update(newData); handle.appendToken(token);
import { clear, h } from "./dom";
import { Emitter, type Listener } from "./events";
import { installStyles } from "./styles";
import { readTheme, type Theme } from "./theme";
import { Tooltip } from "./tooltip";
import type { RenderOptions, StreamToken } from "./types";
import { DataError } from "./validate";
import type { View, ViewContext } from "./view";
import { AttentionView } from "./views/attention";
import { LayerPredictionsView } from "./views/layers";
import { NmfView } from "./views/nmf";
import { ProbabilityView } from "./views/probability";
import { RankingsView, RankingsWatchView } from "./views/rankings";
import { SaliencyView } from "./views/saliency";
import { TabsView } from "./views/tabs";
import { TokensView } from "./views/tokens";

export const version = "0.1.0";

type Factory = (ctx: ViewContext, data: unknown) => View;

const FACTORIES: Record<string, Factory> = {
  tokens: (ctx, data) => new TokensView(ctx, data),
  probability: (ctx, data) => new ProbabilityView(ctx, data),
  saliency: (ctx, data) => new SaliencyView(ctx, data),
  layer_predictions: (ctx, data) => new LayerPredictionsView(ctx, data),
  rankings: (ctx, data) => new RankingsView(ctx, data),
  rankings_watch: (ctx, data) => new RankingsWatchView(ctx, data),
  nmf: (ctx, data) => new NmfView(ctx, data),
  attention: (ctx, data) => new AttentionView(ctx, data),
  tabs: (ctx, data) => new TabsView(ctx, data, makeView),
};

/** The names render() accepts. */
export const views: string[] = Object.keys(FACTORIES);

function makeView(ctx: ViewContext, viewName: string, data: unknown): View {
  const factory = FACTORIES[viewName];
  if (!factory) throw new DataError(`unknown view "${viewName}"; known views: ${views.join(", ")}`);
  const view = factory(ctx, data);
  view.draw();
  return view;
}

const HANDLES = new WeakMap<HTMLElement, Handle>();

/** The handle of the view last rendered into `element` (e.g. one rendered by an inline script). */
export function handleOf(element: HTMLElement | null): Handle | undefined {
  return element ? HANDLES.get(element) : undefined;
}

export interface Handle {
  readonly view: string;
  readonly element: HTMLElement;
  update(data: unknown): void;
  /** tabs view only: new data for one tab (the `tab` of a request event), keeping the others' state. */
  updateTab(tab: number, data: unknown): void;
  /** A live host could not answer a request event: the view that asked (the `tab` of the event, or the
   * whole view when null) shows the message instead of waiting. */
  requestFailed(tab: number | null, message: string): void;
  appendToken(token: StreamToken): void;
  select(position: number | null): void;
  on(event: string, listener: Listener): () => void;
  off(event: string, listener: Listener): void;
  destroy(): void;
}

function sameTheme(a: Theme, b: Theme): boolean {
  return a.bg.join() === b.bg.join() && a.fg.join() === b.fg.join();
}

/** Draws `viewName` with `data` into `element` (its content is replaced) and returns a handle. */
export function render(element: HTMLElement, viewName: string, data: unknown, options: RenderOptions = {}): Handle {
  if (!element || typeof element.appendChild !== "function") throw new TypeError("EccoRender.render: element must be a DOM element");
  HANDLES.get(element)?.destroy();
  const doc = element.ownerDocument;
  installStyles(doc, options.nonce);
  const themeClass = options.theme === "dark" ? " ecco-dark" : options.theme === "light" ? " ecco-light" : "";
  const title = options.title ? h("div", { class: "ecco-title" }, options.title) : null;
  const body = h("div", { class: "ecco-body" });
  const root = h("div", { class: `ecco-root${themeClass}`, "data-view": viewName }, title, body);
  clear(element);
  element.appendChild(root);
  const emitter = new Emitter();
  const ctx = {
    root,
    body,
    theme: readTheme(root),
    options,
    tooltip: new Tooltip(root),
    emit(event: string, detail: Record<string, unknown>) {
      emitter.emit(event, detail);
      element.dispatchEvent(new CustomEvent(`ecco:${event}`, { detail, bubbles: true }));
    },
  };
  const fail = (error: unknown): never => {
    clear(body);
    body.appendChild(h("div", { class: "ecco-error", role: "alert" }, `Cannot draw the ${viewName} view: ${error instanceof Error ? error.message : String(error)}`));
    throw error;
  };
  let view: View | null = null;
  try {
    view = makeView(ctx, viewName, data);
  } catch (error) {
    fail(error);
  }

  const retheme = () => {
    if (!root.isConnected) {
      // the output was removed (a re-run notebook cell): stop following the theme
      observer.disconnect();
      media?.removeEventListener?.("change", retheme);
      return;
    }
    const next = readTheme(root);
    if (sameTheme(next, ctx.theme)) return;
    ctx.theme = next;
    view?.draw();
  };
  const observer = new MutationObserver(retheme);
  for (const target of [doc.documentElement, doc.body]) {
    if (target) observer.observe(target, { attributes: true, attributeFilter: ["class", "style", "data-vscode-theme-kind", "data-jp-theme-light", "data-theme"] });
  }
  const media = doc.defaultView?.matchMedia?.("(prefers-color-scheme: dark)");
  media?.addEventListener?.("change", retheme);

  const handle: Handle = {
    view: viewName,
    element,
    update(next: unknown) {
      if (!view) return;
      try {
        view.update(next);
      } catch (error) {
        fail(error);
      }
    },
    updateTab(tab: number, next: unknown) {
      if (!(view instanceof TabsView)) throw new DataError(`updateTab needs the tabs view, not ${viewName}`);
      try {
        view.updateTab(tab, next);
      } catch (error) {
        fail(error);
      }
    },
    requestFailed(tab: number | null, message: string) {
      if (tab !== null && view instanceof TabsView) view.failTab(tab, message);
      else view?.requestFailed?.(message);
    },
    appendToken(token: StreamToken) {
      if (!view?.appendToken) throw new DataError(`the ${viewName} view does not take streamed tokens (use "tokens" or "probability")`);
      view.appendToken(token);
    },
    select(position: number | null) {
      view?.select?.(position);
    },
    on: (event, listener) => emitter.on(event, listener),
    off: (event, listener) => emitter.off(event, listener),
    destroy() {
      observer.disconnect();
      media?.removeEventListener?.("change", retheme);
      emitter.clear();
      view = null;
      HANDLES.delete(element);
      clear(element);
    },
  };
  HANDLES.set(element, handle);
  return handle;
}

/** Renders every `<script type="application/vnd.ecco.view+json" data-target="id">` not yet rendered. */
export function renderScripts(doc: Document = document): Handle[] {
  const handles: Handle[] = [];
  doc.querySelectorAll<HTMLScriptElement>('script[type="application/vnd.ecco.view+json"]').forEach((script) => {
    if (script.dataset.rendered) return;
    script.dataset.rendered = "1";
    const target = doc.getElementById(script.dataset.target ?? "");
    if (!target) return;
    const spec = JSON.parse(script.textContent ?? "{}") as { view: string; data: unknown; options?: RenderOptions };
    handles.push(render(target, spec.view, spec.data, spec.options ?? {}));
  });
  return handles;
}

(globalThis as unknown as Record<string, unknown>).EccoRender = { render, renderScripts, handleOf, views, version };
