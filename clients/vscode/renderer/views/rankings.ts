// Rankings: a layers × tokens heatmap of the rank each layer gives a token (1 = the layer's top
// prediction), on a log color scale. `rankings` has one column per generated token; `rankings_watch`
// one column per watched token at a single position. Arrow keys move between cells. With a live host,
// rankings_watch offers a text field for the watched tokens and a position picker, and asks with a
// "request-rankings-watch" event ({watch, position}) that the host answers with handle.update(newData).
import { h, percent } from "../dom";
import { gradientLegend, legendRow } from "../legend";
import { mix, paint } from "../theme";
import { displayText, quoted } from "../tokens";
import { tip } from "../tooltip";
import type { RankingsData, RankingsWatchData, TokenData, TokenRef } from "../types";
import { arr, checkTokens, DataError, finite, matrix, obj, position, predicted, str } from "../validate";
import { BaseView, picker, type ViewContext } from "../view";
import { layerLabel } from "./layers";

interface Column {
  token: TokenRef;
  position: number | null;
}

interface HeatInput {
  columns: Column[];
  ranks: number[][];
  probs?: number[][];
  vocab: number;
  layerLabels?: string[];
  describe: (column: Column) => string;
}

function compact(n: number): string {
  return n >= 1000 ? `${Number((n / 1000).toPrecision(2))}k` : String(n);
}

/** Ticks at 1, 10, 100, ... and the vocabulary size, spaced so that their labels never overlap. */
function logTicks(vocab: number): { at: number; label: string }[] {
  const ticks = [{ at: 0, label: "1" }];
  const top = Math.log(vocab);
  for (let p = 10; p < vocab; p *= 10) {
    const at = Math.log(p) / top;
    if (at - ticks[ticks.length - 1].at >= 0.14 && 1 - at >= 0.14) ticks.push({ at, label: compact(p) });
  }
  ticks.push({ at: 1, label: compact(vocab) });
  return ticks;
}

/** Draws the heatmap table and its legend into the view body. */
function heatmap(ctx: ViewContext, input: HeatInput, onPick: (column: Column) => void): HTMLElement[] {
  const { theme } = ctx;
  const top = Math.log(Math.max(2, input.vocab));
  const strength = (rank: number) => 1 - Math.min(1, Math.log(Math.max(1, rank)) / top);
  const color = (rank: number) => mix(theme, theme.hues.green, 0.12 + 0.88 * strength(rank));
  const head = h("tr", {}, h("th", {}, "layer"));
  input.columns.forEach((column) => {
    const th = h("th", { class: "ecco-col", scope: "col", title: input.describe(column) }, displayText(column.token.text, true));
    th.addEventListener("click", () => onPick(column));
    head.appendChild(th);
  });
  const table = h("table", { class: "ecco-heat", role: "grid", "aria-label": "Rank per layer" }, h("thead", {}, head));
  const body = h("tbody");
  const cells: HTMLElement[][] = [];
  const focusCell = (r: number, c: number) => {
    const cell = cells[r]?.[c];
    if (!cell) return;
    cells.forEach((row) => row.forEach((el) => (el.tabIndex = -1)));
    cell.tabIndex = 0;
    cell.focus();
  };
  input.ranks.forEach((row, r) => {
    const label = layerLabel(input.layerLabels, r);
    const tr = h("tr", {}, h("th", { class: "ecco-row", scope: "row" }, label));
    cells.push([]);
    row.forEach((rank, c) => {
      const column = input.columns[c];
      const td = h("td", { role: "gridcell", tabindex: r === 0 && c === 0 ? 0 : -1, "data-rank": rank, "data-layer": r, "data-column": c }, String(rank));
      paint(theme, td, color(rank));
      const show = () => {
        td.classList.add("ecco-active");
        const prob = input.probs?.[r]?.[c];
        ctx.tooltip.show(
          td,
          tip(
            quoted(column.token.text),
            h("div", {}, `${label} · ${input.describe(column)}`),
            h("div", {}, `rank ${rank} of ${input.vocab}${prob !== undefined ? ` · p = ${percent(prob)}` : ""}`),
          ),
        );
      };
      const hide = () => {
        td.classList.remove("ecco-active");
        ctx.tooltip.hide();
      };
      td.addEventListener("mouseenter", show);
      td.addEventListener("mouseleave", hide);
      td.addEventListener("focus", show);
      td.addEventListener("blur", hide);
      td.addEventListener("click", () => onPick(column));
      td.addEventListener("keydown", (event) => {
        const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
        if (event.key === "Enter") {
          onPick(column);
          return;
        }
        const move = moves[event.key];
        if (!move) return;
        event.preventDefault();
        focusCell(r + move[0], c + move[1]);
      });
      cells[r].push(td);
      tr.appendChild(td);
    });
    body.appendChild(tr);
  });
  table.appendChild(body);
  return [
    h("div", { class: "ecco-scroll" }, table),
    legendRow(gradientLegend("rank (log scale)", (t) => color(Math.exp(t * top)), logTicks(Math.max(2, input.vocab)))),
  ];
}

function maxRank(ranks: number[][]): number {
  return Math.max(2, ...ranks.map((row) => Math.max(...row)));
}

export class RankingsView extends BaseView<RankingsData> {
  protected check(data: unknown): RankingsData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const targets = arr(d.targets, "targets").map((t, i) => position(t, `targets[${i}]`, n));
    const layers = arr(d.ranks, "ranks").length;
    matrix(d.ranks, "ranks", layers, targets.length);
    if (d.probs !== undefined) matrix(d.probs, "probs", layers, targets.length);
    if (d.vocab_size !== undefined) finite(d.vocab_size, "vocab_size");
    return { ...(d as unknown as RankingsData), targets };
  }

  draw(): void {
    this.reset();
    const { tokens, targets } = this.data;
    const columns: Column[] = targets.map((p) => ({ token: tokens[p], position: p }));
    this.ctx.body.append(
      h("div", { class: "ecco-note" }, "Rank of each output token among the predictions of every layer (1 = top)."),
      ...heatmap(
        this.ctx,
        {
          columns,
          ranks: this.data.ranks,
          probs: this.data.probs,
          vocab: this.data.vocab_size ?? maxRank(this.data.ranks),
          layerLabels: this.data.layer_labels,
          describe: (c) => `position ${c.position}`,
        },
        (c) => c.position !== null && this.ctx.emit("select-token", { position: c.position, token: tokens[c.position] }),
      ),
    );
  }
}

/**
 * The watched tokens typed in a field: one per line, or separated by commas when on one line; each entry's
 * text is kept as typed (" Paris" keeps its leading space), and "#123" is the token id 123.
 */
export function parseWatch(text: string): (string | number)[] {
  const entries = text.includes("\n") ? text.split(/\r?\n/) : text.split(",");
  return entries
    .filter((entry) => entry.length > 0)
    .map((entry) => (/^\s*#\d+\s*$/.test(entry) ? Number(entry.trim().slice(1)) : entry));
}

/** The field's text for watched tokens (parseWatch reads it back); a text with a separator goes by its id. */
export function watchText(watch: TokenRef[]): string {
  return watch.map((t) => (/[,\n]/.test(t.text) || !t.text ? `#${t.id ?? ""}` : t.text)).join(",");
}

export class RankingsWatchView extends BaseView<RankingsWatchData> {
  private pending: string | null = null; // what was asked of the live host, not answered yet
  private typed: string | null = null; // the field's text, kept across redraws

  update(data: unknown): void {
    this.data = this.check(data);
    this.pending = null;
    this.typed = null;
    this.draw();
  }

  protected clearPending(): void {
    this.pending = null;
  }

  /** The live host's controls: which tokens to watch, at which position. */
  private toolbar(): HTMLElement {
    const tokens = this.data.tokens;
    const positions = this.data.positions ?? [this.data.position];
    let position = this.data.position;
    const input = h("input", {
      type: "text",
      value: this.typed ?? watchText(this.data.watch),
      "aria-label": "Tokens to watch",
      title: 'One token per entry, separated by commas or one per line, leading space included (" Paris"); #id for a token id',
      spellcheck: "false",
    });
    input.addEventListener("input", () => (this.typed = input.value));
    const where = picker(
      "Position",
      positions.map((p) => ({
        value: String(p),
        label: p < tokens.length ? `${p}: ${quoted(tokens[p].text)}` : `${p}: after the text`,
      })),
      String(position),
      (v) => (position = Number(v)),
    );
    const go = h("button", { class: "ecco-btn ecco-solo", type: "button" }, "Rank");
    const request = () => {
      const watch = parseWatch(input.value);
      if (!watch.length) {
        input.setCustomValidity("type at least one token");
        input.reportValidity();
        return;
      }
      input.setCustomValidity("");
      this.typed = input.value;
      this.pending = `ranking ${watch.length} token${watch.length > 1 ? "s" : ""} at position ${position}…`;
      this.ctx.emit("request-rankings-watch", { watch, position });
      this.draw();
    };
    go.addEventListener("click", request);
    input.addEventListener("keydown", (event) => event.key === "Enter" && request());
    const bar = h("div", { class: "ecco-toolbar" }, h("label", { class: "ecco-field" }, "Watch", input), where, go);
    if (this.pending !== null) bar.append(h("span", { class: "ecco-note ecco-pending" }, this.pending));
    return bar;
  }

  protected check(data: unknown): RankingsWatchData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    predicted(d.position, "position", n);
    const watch = arr(d.watch, "watch");
    if (watch.length === 0) throw new DataError("watch must list at least one token");
    watch.forEach((w, i) => str(obj(w, `watch[${i}]`).text, `watch[${i}].text`));
    const layers = arr(d.ranks, "ranks").length;
    matrix(d.ranks, "ranks", layers, watch.length);
    if (d.probs !== undefined) matrix(d.probs, "probs", layers, watch.length);
    return d as unknown as RankingsWatchData;
  }

  draw(): void {
    this.reset();
    const tokens: TokenData[] = this.data.tokens;
    const p = this.data.position;
    const actual = tokens[p];
    if (this.ctx.options.live) this.ctx.body.append(this.toolbar());
    this.ctx.body.append(
      h(
        "div",
        { class: "ecco-note" },
        `Rank of each watched token at position ${p}, after ${quoted(tokens[p - 1].text)}`,
        actual ? `; the actual token there is ${quoted(actual.text)}.` : " (the token after the text).",
      ),
      ...heatmap(
        this.ctx,
        {
          columns: this.data.watch.map((token) => ({ token, position: null })),
          ranks: this.data.ranks,
          probs: this.data.probs,
          vocab: this.data.vocab_size ?? maxRank(this.data.ranks),
          layerLabels: this.data.layer_labels,
          describe: () => `at position ${p}`,
        },
        (c) => this.ctx.emit("select-token", { position: p, token: tokens[p], watched: c.token }),
      ),
    );
  }
}
