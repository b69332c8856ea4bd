// NMF factor explorer: one sparkline per factor; tokens colored by their dominant factor; hovering
// (or focusing) a factor recolors the text by that factor alone, clicking pins it. The factor count
// can be changed: precomputed alternatives switch locally; with a live host, other counts are asked
// for with a "request-nmf" event that the host answers with handle.update(newData).
import { h, num, percent, svg } from "../dom";
import { gradientLegend, legendRow, swatchLegend } from "../legend";
import { css, factorColor, mix, paint, type RGB } from "../theme";
import { TokenStrip } from "../tokens";
import type { NmfData, TokenData } from "../types";
import { arr, checkTokens, DataError, finite, matrix, obj } from "../validate";
import { BaseView, picker, roving } from "../view";
import { tokenTip } from "./tokens";

const SPARK_W = 180;
const SPARK_H = 26;

export class NmfView extends BaseView<NmfData> {
  private k = 0;
  private factors: number[][] = [];
  private hoveredFactor: number | null = null;
  private pinnedFactor: number | null = null;
  private pendingK: number | null = null;
  private strip: TokenStrip | null = null;
  private rows: HTMLElement[] = [];

  protected check(data: unknown): NmfData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const k = finite(d.k, "k");
    matrix(d.factors, "factors", k, n);
    finite(d.from_layer, "from_layer");
    finite(d.to_layer, "to_layer");
    if (d.alternatives !== undefined) {
      arr(d.alternatives, "alternatives").forEach((a, i) => {
        const alt = obj(a, `alternatives[${i}]`);
        const ak = finite(alt.k, `alternatives[${i}].k`);
        matrix(alt.factors, `alternatives[${i}].factors`, ak, n);
      });
    }
    if (d.k_range !== undefined) {
      const range = arr(d.k_range, "k_range", 2).map((v, i) => finite(v, `k_range[${i}]`));
      if (range[0] > range[1]) throw new DataError("k_range must be [min, max]");
    }
    return d as unknown as NmfData;
  }

  update(data: unknown): void {
    this.data = this.check(data);
    this.k = 0;
    this.pendingK = null;
    this.draw();
  }

  protected clearPending(): void {
    this.pendingK = null;
  }

  private choices(): number[] {
    const ks = new Set([this.data.k, ...(this.data.alternatives ?? []).map((a) => a.k)]);
    return [...ks].sort((a, b) => a - b);
  }

  private factorsFor(k: number): number[][] {
    if (k === this.data.k) return this.data.factors;
    return this.data.alternatives?.find((a) => a.k === k)?.factors ?? this.data.factors;
  }

  private focused(): number | null {
    return this.hoveredFactor ?? this.pinnedFactor;
  }

  draw(): void {
    this.reset();
    if (!this.k || !this.choices().includes(this.k)) this.k = this.data.k;
    this.factors = this.factorsFor(this.k);
    if (this.pinnedFactor !== null && this.pinnedFactor >= this.factors.length) this.pinnedFactor = null;
    this.hoveredFactor = null;
    const { from_layer: from, to_layer: to } = this.data;
    const layers = from === to ? `layer ${from}` : `layers ${from}–${to}`;
    this.ctx.body.append(
      h("div", { class: "ecco-title" }, `Neuron activation factors (NMF of ${layers})`),
      this.toolbar(),
      this.factorList(),
    );
    this.strip = new TokenStrip(this.data.tokens, this.ctx.tooltip, {
      label: "Tokens colored by factor",
      onHover: () => undefined,
      onSelect: (i) => i !== null && this.ctx.emit("select-token", { position: i, token: this.data.tokens[i] }),
      onActivate: (i) => this.ctx.emit("reveal-token", { position: i, token: this.data.tokens[i] }),
      tooltip: (i) => this.tipFor(i),
    });
    this.ctx.body.append(
      this.strip.el,
      legendRow(
        swatchLegend(this.ctx.theme, this.factors.map((_, f) => ({ label: `${f + 1}`, color: factorColor(this.ctx.theme, f) }))),
        gradientLegend("activation (of the factor's max)", (t) => this.legendColor(t), [
          { at: 0, label: "0" },
          { at: 1, label: "max" },
        ]),
      ),
    );
    this.paintTokens();
  }

  private toolbar(): HTMLElement {
    const bar = h("div", { class: "ecco-toolbar" });
    const choices = this.choices();
    if (this.ctx.options.live) {
      const [min, max] = this.data.k_range ?? [1, Math.max(10, this.data.k)];
      const input = h("input", { type: "number", min, max, value: this.pendingK ?? this.k, "aria-label": "Number of factors" });
      const go = h("button", { class: "ecco-btn ecco-solo", type: "button" }, "Recompute");
      const request = () => {
        const k = Math.round(Number(input.value));
        if (!Number.isFinite(k) || k < min || k > max) {
          input.setCustomValidity(`between ${min} and ${max}`);
          input.reportValidity();
          return;
        }
        input.setCustomValidity("");
        if (choices.includes(k)) {
          this.k = k;
          this.draw();
          return;
        }
        this.pendingK = k;
        this.ctx.emit("request-nmf", { k, from_layer: this.data.from_layer, to_layer: this.data.to_layer });
        this.draw();
      };
      go.addEventListener("click", request);
      input.addEventListener("keydown", (event) => event.key === "Enter" && request());
      bar.append(h("label", { class: "ecco-field" }, "Number of factors", input), go);
      if (this.pendingK !== null) bar.append(h("span", { class: "ecco-note ecco-pending" }, `computing ${this.pendingK} factors…`));
    } else {
      bar.append(
        picker(
          "Number of factors",
          choices.map((k) => ({ value: String(k), label: String(k) })),
          String(this.k),
          (v) => {
            this.k = Number(v);
            this.draw();
          },
        ),
        h(
          "span",
          { class: "ecco-note" },
          choices.length > 1
            ? `precomputed: ${choices.join(", ")}. Other counts need a live daemon (run_nmf(n_components=…)).`
            : "Other factor counts need a live daemon: call run_nmf(n_components=…) again.",
        ),
      );
    }
    return bar;
  }

  private factorList(): HTMLElement {
    const list = h("div", { class: "ecco-factors", role: "listbox", "aria-label": "Factor list" });
    this.rows = this.factors.map((values, f) => {
      const color = factorColor(this.ctx.theme, f);
      const swatch = h("span", { class: "ecco-swatch" });
      swatch.style.backgroundColor = css(color);
      const max = Math.max(...values, 1e-12);
      const row = h(
        "div",
        {
          class: `ecco-factor${this.pinnedFactor === f ? " ecco-active" : ""}`,
          role: "option",
          tabindex: f === (this.pinnedFactor ?? 0) ? 0 : -1,
          "aria-selected": String(this.pinnedFactor === f),
          "data-factor": f,
          "aria-label": `Factor ${f + 1}, strongest at position ${values.indexOf(max)}`,
        },
        swatch,
        h("span", { class: "ecco-factor-label" }, `Factor ${f + 1}`),
        this.sparkline(values, color),
        h("span", { class: "ecco-note" }, `max ${num(max)}`),
      );
      const enter = () => this.setHovered(f);
      const leave = () => this.setHovered(null);
      row.addEventListener("mouseenter", enter);
      row.addEventListener("mouseleave", leave);
      row.addEventListener("focus", enter);
      row.addEventListener("blur", leave);
      row.addEventListener("click", () => this.pin(f));
      row.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          this.pin(f);
          return;
        }
        if (roving(this.rows, f, event.key) !== null) event.preventDefault();
      });
      list.appendChild(row);
      return row;
    });
    return list;
  }

  private sparkline(values: number[], color: readonly [number, number, number]): SVGElement {
    const max = Math.max(...values, 1e-12);
    const n = values.length;
    const x = (i: number) => (n <= 1 ? SPARK_W / 2 : (i / (n - 1)) * (SPARK_W - 2) + 1);
    const y = (v: number) => SPARK_H - 2 - (v / max) * (SPARK_H - 4);
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    const chart = svg("svg", { class: "ecco-spark", width: SPARK_W, height: SPARK_H, viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, "aria-hidden": "true" });
    const area = svg("polygon", { points: `${x(0)},${SPARK_H - 2} ${points} ${x(n - 1)},${SPARK_H - 2}`, fill: css(color), "fill-opacity": 0.25 });
    const line = svg("polyline", { points, fill: "none", stroke: css(color), "stroke-width": 1.5 });
    chart.append(area, line);
    return chart;
  }

  private setHovered(f: number | null): void {
    this.hoveredFactor = f;
    this.paintTokens();
  }

  private pin(f: number): void {
    this.pinnedFactor = this.pinnedFactor === f ? null : f;
    this.rows.forEach((row, i) => {
      row.classList.toggle("ecco-active", i === this.pinnedFactor);
      row.setAttribute("aria-selected", String(i === this.pinnedFactor));
    });
    this.paintTokens();
  }

  private paintTokens(): void {
    const strip = this.strip;
    if (!strip) return;
    const { theme } = this.ctx;
    const focused = this.focused();
    const maxes = this.factors.map((values) => Math.max(...values, 1e-12));
    for (let j = 0; j < strip.length; j++) {
      const box = strip.box(j);
      let f = focused;
      if (f === null) {
        let best = -1;
        this.factors.forEach((values, i) => {
          const share = values[j] / maxes[i];
          if (share > best) {
            best = share;
            f = i;
          }
        });
      }
      const share = f === null ? 0 : this.factors[f][j] / maxes[f];
      paint(theme, box, share > 0 ? mix(theme, factorColor(theme, f ?? 0), share) : null);
      box.dataset.factor = f === null ? "" : String(f);
      box.dataset.share = String(share);
    }
    this.refreshLegend();
  }

  /** The focused factor's hue, or a neutral ramp when each token shows its own dominant factor. */
  private legendColor(t: number): RGB {
    const { theme } = this.ctx;
    const f = this.focused();
    return mix(theme, f === null ? theme.fg : factorColor(theme, f), f === null ? t * 0.6 : t);
  }

  private refreshLegend(): void {
    const gradient = this.ctx.body.querySelector(".ecco-legend-gradient");
    if (!gradient) return;
    const fresh = gradientLegend(
      this.focused() === null ? "activation (of each factor's max)" : `factor ${(this.focused() ?? 0) + 1} activation`,
      (t) => this.legendColor(t),
      [
        { at: 0, label: "0" },
        { at: 1, label: "max" },
      ],
    );
    gradient.replaceWith(fresh);
  }

  private tipFor(i: number): HTMLElement {
    const table = h("table", { class: "ecco-table" });
    this.factors.forEach((values, f) => {
      const max = Math.max(...values, 1e-12);
      const bar = h("div", { class: "ecco-alt-bar" });
      bar.style.width = `${Math.max(1, (values[i] / max) * 100)}%`;
      bar.style.backgroundColor = css(factorColor(this.ctx.theme, f));
      table.append(h("tr", {}, h("th", {}, `Factor ${f + 1}`), h("td", { class: "ecco-alt-track" }, bar), h("td", {}, `${num(values[i])} (${percent(values[i] / max)})`)));
    });
    return tokenTip(this.data.tokens as TokenData[], i, table);
  }

  /** Clears the "computing" note when the host could not answer a request. */
  cancelPending(): void {
    this.pendingK = null;
    this.draw();
  }
}

