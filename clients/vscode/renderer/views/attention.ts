// Attention: pick a layer and a head (or the mean of the heads); select a token to see where it
// attends, drawn either as lines from it to every key or as heat on the text. With a live host and
// `n_layers`, the layer picker offers every layer; one not embedded is asked for with a
// "request-attention" event ({layer}) that the host answers with handle.update(newData).
import { h, percent, svg } from "../dom";
import { gradientLegend, legendRow } from "../legend";
import { css, mix, paint } from "../theme";
import { displayText, startsWord, TokenStrip } from "../tokens";
import type { AttentionData, TokenData } from "../types";
import { arr, checkTokens, DataError, finite, obj } from "../validate";
import { BaseView, picker, roving, segmented } from "../view";
import { tokenTip } from "./tokens";

type Mode = "lines" | "heat";
const ROW = 22;
const LINES_W = 220;
const MEAN = -1;

export class AttentionView extends BaseView<AttentionData> {
  private layer = 0; // index into data.layers
  private pendingLayer: number | null = null; // a layer asked of the live host, not answered yet
  private head: number | null = null; // index into data.heads, or MEAN; null: not chosen yet
  private mode: Mode = this.ctx.options.mode ?? "lines";
  private query: number | null = null;
  private hoveredQuery: number | null = null;
  private strip: TokenStrip | null = null;
  private svgEl: SVGSVGElement | null = null;
  private leftRows: HTMLElement[] = [];
  private rightRows: HTMLElement[] = [];

  protected check(data: unknown): AttentionData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const layers = arr(d.layers, "layers").map((v, i) => finite(v, `layers[${i}]`));
    const heads = arr(d.heads, "heads").map((v, i) => finite(v, `heads[${i}]`));
    if (!layers.length || !heads.length) throw new DataError("layers and heads must each list at least one index");
    arr(d.attention, "attention", layers.length).forEach((perLayer, l) =>
      arr(perLayer, `attention[${l}]`, heads.length).forEach((m, hd) =>
        arr(m, `attention[${l}][${hd}]`, n).forEach((row, q) => arr(row, `attention[${l}][${hd}][${q}]`, n)),
      ),
    );
    return d as unknown as AttentionData;
  }

  update(data: unknown): void {
    this.data = this.check(data);
    const asked = this.pendingLayer === null ? -1 : this.data.layers.indexOf(this.pendingLayer);
    this.layer = asked >= 0 ? asked : 0;
    this.pendingLayer = null;
    this.draw();
  }

  protected clearPending(): void {
    this.pendingLayer = null;
  }

  /** The layer picker: the embedded layers, or every layer when a live host computes the others. */
  private layerPicker(): HTMLElement {
    const total = this.data.n_layers ?? 0;
    const live = this.ctx.options.live === true && total > 0;
    const shown = this.data.layers[this.layer];
    const all = live ? Array.from({ length: total }, (_, l) => l) : this.data.layers;
    const current = this.pendingLayer ?? shown;
    return picker("Layer", all.map((l) => ({ value: String(l), label: `Layer ${l}` })), String(current), (v) => {
      const wanted = Number(v);
      const embedded = this.data.layers.indexOf(wanted);
      if (embedded >= 0) {
        this.layer = embedded;
        this.pendingLayer = null;
      } else {
        this.pendingLayer = wanted;
        this.ctx.emit("request-attention", { layer: wanted });
      }
      this.draw();
    });
  }

  /** Attention weights from query q to every key in the current layer/head selection. */
  private weights(q: number): number[] {
    const perHead = this.data.attention[this.layer];
    if (this.head !== MEAN) return perHead[this.head ?? 0][q].map((v) => (Number.isFinite(v) ? v : 0));
    const n = this.data.tokens.length;
    const out = new Array<number>(n).fill(0);
    for (const m of perHead) m[q].forEach((v, k) => (out[k] += (Number.isFinite(v) ? v : 0) / perHead.length));
    return out;
  }

  private shownQuery(): number | null {
    return this.hoveredQuery ?? this.query;
  }

  draw(): void {
    this.reset();
    const n = this.data.tokens.length;
    if (this.layer >= this.data.layers.length) this.layer = 0;
    if (this.head === null || this.head >= this.data.heads.length) this.head = this.data.heads.length > 1 ? MEAN : 0;
    if (this.query === null || this.query >= n) this.query = n - 1;
    const headItems = this.data.heads.map((hd, i) => ({ value: String(i), label: `Head ${hd}` }));
    if (this.data.heads.length > 1) headItems.unshift({ value: String(MEAN), label: "Mean of heads" });
    const toolbar = h(
      "div",
      { class: "ecco-toolbar" },
      this.layerPicker(),
      picker("Head", headItems, String(this.head), (v) => {
        this.head = Number(v);
        this.draw();
      }),
      segmented(
        "Show",
        [
          { value: "lines", label: "Lines" },
          { value: "heat", label: "Heat" },
        ],
        this.mode,
        (v) => {
          this.mode = v as Mode;
          this.draw();
        },
      ),
    );
    if (this.pendingLayer !== null) {
      toolbar.append(h("span", { class: "ecco-note ecco-pending" }, `computing layer ${this.pendingLayer}…`));
    }
    this.ctx.body.append(toolbar);
    if (this.mode === "heat") this.drawHeat();
    else this.drawLines();
    this.ctx.body.append(
      legendRow(
        gradientLegend("attention weight (of the row's largest)", (t) => mix(this.ctx.theme, this.ctx.theme.hues.orange, t), [
          { at: 0, label: "0" },
          { at: 1, label: "max" },
        ]),
      ),
    );
    this.paint();
  }

  private drawHeat(): void {
    this.strip = new TokenStrip(this.data.tokens, this.ctx.tooltip, {
      label: "Tokens; select one to color the tokens it attends to",
      onHover: (i) => {
        this.hoveredQuery = null;
        void i;
      },
      onSelect: (i) => {
        if (i === null) return;
        this.query = i;
        this.paint();
        this.ctx.emit("select-token", { position: i, token: this.data.tokens[i] });
      },
      onActivate: (i) => this.ctx.emit("reveal-token", { position: i, token: this.data.tokens[i] }),
      tooltip: (i) => {
        const q = this.shownQuery();
        if (q === null) return tokenTip(this.data.tokens, i);
        return tokenTip(this.data.tokens, i, h("div", {}, `attention from position ${q}: ${percent(this.weights(q)[i])}`));
      },
    });
    if (this.query !== null) this.strip.select(this.query, false);
    this.ctx.body.append(h("div", { class: "ecco-note" }, "Select a token: the others are colored by how much it attends to them."), this.strip.el);
  }

  private drawLines(): void {
    this.strip = null;
    const tokens: TokenData[] = this.data.tokens;
    const n = tokens.length;
    const label = (i: number) => displayText(tokens[i].text, startsWord(tokens, i));
    const left = h("div", { class: "ecco-attn-col ecco-left", role: "listbox", "aria-label": "Query token" });
    const right = h("div", { class: "ecco-attn-col ecco-right", "aria-hidden": "true" });
    this.leftRows = [];
    this.rightRows = [];
    for (let i = 0; i < n; i++) {
      const row = h("div", { class: "ecco-attn-row", role: "option", tabindex: i === this.query ? 0 : -1, "data-position": i, "aria-selected": String(i === this.query) }, label(i));
      row.addEventListener("mouseenter", () => this.hoverQuery(i));
      row.addEventListener("mouseleave", () => this.hoverQuery(null));
      row.addEventListener("click", () => this.pickQuery(i));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter") this.ctx.emit("reveal-token", { position: i, token: tokens[i] });
        const next = roving(this.leftRows, i, event.key);
        if (next !== null) {
          event.preventDefault();
          this.pickQuery(next);
        }
      });
      this.leftRows.push(row);
      left.appendChild(row);
      const key = h("div", { class: "ecco-attn-row", "data-position": i }, label(i));
      key.addEventListener("mouseenter", () => {
        const q = this.shownQuery();
        if (q !== null) this.ctx.tooltip.show(key, tokenTip(tokens, i, h("div", {}, `attention from position ${q}: ${percent(this.weights(q)[i])}`)));
      });
      key.addEventListener("mouseleave", () => this.ctx.tooltip.hide());
      this.rightRows.push(key);
      right.appendChild(key);
    }
    // The lines stretch to the column's width, which narrows in a narrow panel (strokes keep their width).
    this.svgEl = svg("svg", { class: "ecco-attn-lines", height: n * ROW, viewBox: `0 0 ${LINES_W} ${n * ROW}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    this.ctx.body.append(
      h("div", { class: "ecco-note" }, "Left: the token attending (select with click or arrow keys). Right: the tokens it attends to."),
      h("div", { class: "ecco-scroll" }, h("div", { class: "ecco-attn" }, left, this.svgEl, right)),
    );
  }

  private hoverQuery(i: number | null): void {
    this.hoveredQuery = i;
    this.paint();
  }

  private pickQuery(i: number): void {
    this.query = i;
    this.leftRows.forEach((row, j) => {
      row.classList.toggle("ecco-selected", j === i);
      row.setAttribute("aria-selected", String(j === i));
    });
    this.paint();
    this.ctx.emit("select-token", { position: i, token: this.data.tokens[i] });
  }

  private paint(): void {
    const { theme } = this.ctx;
    const q = this.shownQuery();
    const weights = q === null ? null : this.weights(q);
    const max = weights ? Math.max(...weights, 1e-12) : 1;
    const color = (w: number) => mix(theme, theme.hues.orange, w / max);
    if (this.mode === "heat" && this.strip) {
      for (let j = 0; j < this.strip.length; j++) {
        const box = this.strip.box(j);
        paint(theme, box, weights ? color(weights[j]) : null);
        box.dataset.weight = weights ? String(weights[j]) : "";
      }
      return;
    }
    this.leftRows.forEach((row, j) => row.classList.toggle("ecco-selected", j === this.query));
    this.rightRows.forEach((row, j) => {
      paint(theme, row, weights ? color(weights[j]) : null);
      row.dataset.weight = weights ? String(weights[j]) : "";
    });
    const chart = this.svgEl;
    if (!chart) return;
    while (chart.firstChild) chart.removeChild(chart.firstChild);
    if (!weights || q === null) return;
    const stroke = css(theme.hues.orange);
    weights.forEach((w, k) => {
      if (w / max < 0.02) return;
      chart.appendChild(
        svg("line", {
          x1: 2,
          y1: q * ROW + ROW / 2,
          x2: LINES_W - 2,
          y2: k * ROW + ROW / 2,
          stroke,
          "stroke-width": (0.5 + 3.5 * (w / max)).toFixed(2),
          "stroke-opacity": (0.15 + 0.85 * (w / max)).toFixed(2),
          "data-key": k,
          "vector-effect": "non-scaling-stroke",
        }),
      );
    });
  }
}
