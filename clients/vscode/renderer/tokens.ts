// The token strip: tokens as boxes, input and generated tokens marked, the pieces of a word joined
// visually, line breaks kept. Hover previews, click or arrow keys select (roving tabindex), Enter or
// double click "activates" (hosts use it to reveal the token in the editor). Tokens can be appended.
import { h } from "./dom";
import type { Tooltip } from "./tooltip";
import type { TokenData } from "./types";

export interface StripOptions {
  label: string;
  clickable?: (index: number) => boolean;
  dimUnclickable?: boolean; // fade tokens that cannot be picked (e.g. positions not computed)
  onHover?: (index: number | null) => void;
  onSelect?: (index: number | null) => void;
  onActivate?: (index: number) => void;
  tooltip?: (index: number) => Node | null;
}

const NEWLINE = /\r?\n/;

/** Whether a token starts a word; inferred from whitespace when the data does not say. */
export function startsWord(tokens: readonly TokenData[], i: number): boolean {
  const t = tokens[i];
  if (typeof t.word_start === "boolean") return t.word_start;
  if (i === 0 || t.special) return true;
  const prev = tokens[i - 1];
  return /^\s/.test(t.text) || /\s$/.test(prev.text) || Boolean(prev.special);
}

/** The text shown in a token box: one leading space dropped (the gap shows it), whitespace made visible. */
export function displayText(text: string, wordStart: boolean): string {
  let shown = wordStart && text.startsWith(" ") ? text.slice(1) : text;
  shown = shown.replace(/\r?\n/g, "↵").replace(/\t/g, "⇥");
  if (shown === "") return text === "" ? "∅" : "␣";
  if (/^ +$/.test(shown)) return shown.replace(/ /g, "␣");
  return shown;
}

/** A short quoted form for tooltips and headers. */
export function quoted(text: string): string {
  return JSON.stringify(text).replace(/^"|"$/g, "'");
}

export class TokenStrip {
  readonly el: HTMLElement;
  private readonly tokens: TokenData[] = [];
  private readonly boxes: HTMLElement[] = [];
  selected: number | null = null;
  hovered: number | null = null;

  constructor(
    tokens: readonly TokenData[],
    private readonly tooltip: Tooltip,
    private readonly opts: StripOptions,
  ) {
    this.el = h("div", { class: "ecco-tokens", role: "listbox", "aria-label": opts.label, "aria-orientation": "horizontal" });
    this.el.addEventListener("keydown", (event) => this.onKey(event));
    for (const token of tokens) this.append(token);
  }

  get length(): number {
    return this.boxes.length;
  }

  box(i: number): HTMLElement {
    return this.boxes[i];
  }

  /** The token a view should describe now: the hovered one, else the selected one. */
  active(): number | null {
    return this.hovered ?? this.selected;
  }

  isClickable(i: number): boolean {
    return this.opts.clickable ? this.opts.clickable(i) : true;
  }

  append(token: TokenData): HTMLElement {
    const i = this.tokens.length;
    this.tokens.push(token);
    const wordStart = startsWord(this.tokens, i);
    const classes = ["ecco-token", token.is_input ? "ecco-input" : "ecco-output"];
    if (i === 0 || (i > 0 && NEWLINE.test(this.tokens[i - 1].text))) classes.push("ecco-first");
    else if (!wordStart) {
      classes.push("ecco-cont");
      this.boxes[i - 1].classList.add("ecco-joined");
    }
    if (token.special) classes.push("ecco-special");
    const clickable = this.isClickable(i);
    if (clickable) classes.push("ecco-clickable");
    else if (this.opts.dimUnclickable) classes.push("ecco-disabled");
    const box = h(
      "span",
      {
        class: classes.join(" "),
        role: "option",
        tabindex: this.boxes.length === 0 ? 0 : -1,
        "aria-selected": "false",
        "aria-disabled": clickable ? null : "true",
        "data-position": i,
        "data-kind": token.is_input ? "input" : "output",
        "aria-label": `${token.is_input ? "input" : "generated"} token ${i}: ${quoted(token.text)}`,
      },
      h("span", { class: "ecco-text" }, displayText(token.text, wordStart)),
    );
    box.addEventListener("mouseenter", () => this.hover(i, box));
    box.addEventListener("mouseleave", () => this.hover(null, box));
    box.addEventListener("focus", () => this.hover(i, box));
    box.addEventListener("blur", () => this.hover(null, box));
    box.addEventListener("click", () => {
      if (this.isClickable(i)) this.select(i);
    });
    box.addEventListener("dblclick", () => this.opts.onActivate?.(i));
    this.boxes.push(box);
    this.el.appendChild(box);
    if (NEWLINE.test(token.text)) this.el.appendChild(h("span", { class: "ecco-break", "aria-hidden": "true" }));
    return box;
  }

  /** Refreshes the enabled/disabled state after the set of clickable tokens changed. */
  refreshClickable(): void {
    this.boxes.forEach((box, i) => {
      const clickable = this.isClickable(i);
      box.classList.toggle("ecco-clickable", clickable);
      box.classList.toggle("ecco-disabled", !clickable && Boolean(this.opts.dimUnclickable));
      if (clickable) box.removeAttribute("aria-disabled");
      else box.setAttribute("aria-disabled", "true");
    });
  }

  select(i: number | null, notify = true): void {
    if (this.selected !== null) {
      this.boxes[this.selected]?.classList.remove("ecco-selected");
      this.boxes[this.selected]?.setAttribute("aria-selected", "false");
    }
    this.selected = i;
    if (i !== null && this.boxes[i]) {
      this.boxes[i].classList.add("ecco-selected");
      this.boxes[i].setAttribute("aria-selected", "true");
      this.setTabStop(i);
    }
    if (notify) this.opts.onSelect?.(i);
  }

  /** Re-runs the hover callback so the tooltip and colors follow new data. */
  refreshHover(): void {
    if (this.hovered !== null) this.hover(this.hovered, this.boxes[this.hovered]);
  }

  private setTabStop(i: number): void {
    this.boxes.forEach((b, j) => (b.tabIndex = j === i ? 0 : -1));
  }

  private hover(i: number | null, box: HTMLElement): void {
    if (this.hovered !== null) this.boxes[this.hovered]?.classList.remove("ecco-hovered");
    this.hovered = i;
    if (i === null) {
      this.tooltip.hide();
    } else {
      box.classList.add("ecco-hovered");
      const content = this.opts.tooltip?.(i);
      if (content) this.tooltip.show(box, content);
      else this.tooltip.hide();
    }
    this.opts.onHover?.(i);
  }

  private onKey(event: KeyboardEvent): void {
    const target = event.target as HTMLElement;
    const current = Number(target.dataset.position ?? this.selected ?? 0);
    const n = this.boxes.length;
    const step = (from: number, dir: number): number | null => {
      for (let j = from + dir; j >= 0 && j < n; j += dir) if (this.isClickable(j)) return j;
      return null;
    };
    let next: number | null = null;
    switch (event.key) {
      case "ArrowRight":
      case "ArrowDown":
        next = step(current, 1);
        break;
      case "ArrowLeft":
      case "ArrowUp":
        next = step(current, -1);
        break;
      case "Home":
        next = step(-1, 1);
        break;
      case "End":
        next = step(n, -1);
        break;
      case "Enter":
        event.preventDefault();
        if (this.isClickable(current)) {
          this.select(current);
          this.opts.onActivate?.(current);
        }
        return;
      case " ":
        event.preventDefault();
        if (this.isClickable(current)) this.select(current);
        return;
      case "Escape":
        this.select(null);
        return;
      default:
        return;
    }
    event.preventDefault();
    if (next === null) return;
    this.boxes[next].focus();
    this.select(next);
  }
}
