// What every view shares: its context (where to draw, theme, options, tooltip, event sink) and a base
// class that validates data, keeps interaction state across redraws (theme changes, updates) and redraws.
import { clear, h } from "./dom";
import type { Theme } from "./theme";
import type { Tooltip } from "./tooltip";
import type { RenderOptions, StreamToken } from "./types";

export interface ViewContext {
  readonly root: HTMLElement;
  readonly body: HTMLElement;
  readonly theme: Theme;
  readonly options: RenderOptions;
  readonly tooltip: Tooltip;
  emit(event: string, detail: Record<string, unknown>): void;
}

export interface View {
  draw(): void;
  update(data: unknown): void;
  /** A live host could not answer the view's request: the view drops its pending state and says why. */
  requestFailed?(message: string): void;
  appendToken?(token: StreamToken): void;
  select?(position: number | null): void;
}

export abstract class BaseView<D> implements View {
  protected data: D;

  constructor(protected readonly ctx: ViewContext, data: unknown) {
    this.data = this.check(data);
  }

  /** Validates raw data (throwing DataError with the field at fault) and returns it typed. */
  protected abstract check(data: unknown): D;

  /** Rebuilds the view's DOM from this.data and the interaction state. */
  abstract draw(): void;

  update(data: unknown): void {
    this.data = this.check(data);
    this.draw();
  }

  protected reset(): void {
    this.ctx.tooltip.hide();
    clear(this.ctx.body);
  }

  requestFailed(message: string): void {
    this.clearPending();
    this.draw();
    this.ctx.body.prepend(h("div", { class: "ecco-error ecco-request-error", role: "alert" }, message));
  }

  /** Forgets a request in flight (its "computing…" note); views that ask a live host override it. */
  protected clearPending(): void {}
}

/** A segmented control (a group of toggle buttons); arrow keys move between the buttons. */
export function segmented(
  label: string,
  items: { value: string; label: string }[],
  current: string,
  onPick: (value: string) => void,
): HTMLElement {
  const group = h("div", { class: "ecco-seg", role: "group", "aria-label": label });
  const buttons = items.map((item) =>
    h("button", { class: "ecco-btn", type: "button", "aria-pressed": String(item.value === current), "data-value": item.value }, item.label),
  );
  buttons.forEach((button, i) => {
    button.addEventListener("click", () => onPick(items[i].value));
    button.addEventListener("keydown", (event) => {
      const dir = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!dir) return;
      event.preventDefault();
      const next = buttons[(i + dir + buttons.length) % buttons.length];
      next.focus();
      next.click();
    });
    group.appendChild(button);
  });
  return h("span", { class: "ecco-field" }, label, group);
}

/** A labelled <select>. */
export function picker(
  label: string,
  items: { value: string; label: string; disabled?: boolean }[],
  current: string,
  onPick: (value: string) => void,
): HTMLElement {
  const select = h("select", { "aria-label": label });
  for (const item of items) {
    const option = h("option", { value: item.value, disabled: item.disabled }, item.label);
    if (item.value === current) option.selected = true;
    select.appendChild(option);
  }
  select.addEventListener("change", () => onPick(select.value));
  return h("label", { class: "ecco-field" }, label, select);
}

/** Moves focus within a list of elements with arrow keys (roving tabindex); returns the new index. */
export function roving(items: HTMLElement[], index: number, key: string, vertical = true): number | null {
  const back = vertical ? "ArrowUp" : "ArrowLeft";
  const forward = vertical ? "ArrowDown" : "ArrowRight";
  let next: number | null = null;
  if (key === back) next = Math.max(0, index - 1);
  else if (key === forward) next = Math.min(items.length - 1, index + 1);
  else if (key === "Home") next = 0;
  else if (key === "End") next = items.length - 1;
  if (next === null) return null;
  items.forEach((el, i) => (el.tabIndex = i === next ? 0 : -1));
  items[next].focus();
  return next;
}
