// Layer predictions (logit lens): pick a position; each layer's top-k next-token predictions with
// probability bars and ranks, and where the token that actually follows stands at every layer.
import { h, percent } from "../dom";
import { gradientLegend, legendRow } from "../legend";
import { css, mix, paint, textOn } from "../theme";
import { quoted, TokenStrip } from "../tokens";
import { tip } from "../tooltip";
import type { LayerPredictionsAtPosition, LayerPredictionsData, Prediction, TokenData } from "../types";
import { arr, checkTokens, DataError, finite, obj, predicted, str } from "../validate";
import { BaseView, roving } from "../view";

export function layerLabel(labels: readonly string[] | undefined, layer: number): string {
  return labels?.[layer] ?? `Layer ${layer}`;
}

function samePrediction(a: Prediction, b: Prediction): boolean {
  return a.id !== undefined && b.id !== undefined ? a.id === b.id : a.text === b.text;
}

export class LayerPredictionsView extends BaseView<LayerPredictionsData> {
  private position: number | null = null;
  private pending: number | null = null;
  private strip: TokenStrip | null = null;
  private activeRow = 0;

  protected check(data: unknown): LayerPredictionsData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const positions = arr(d.positions, "positions");
    let layerCount: number | null = null;
    positions.forEach((p, k) => {
      const at = obj(p, `positions[${k}]`);
      predicted(at.position, `positions[${k}].position`, n);
      const layers = arr(at.layers, `positions[${k}].layers`);
      if (layerCount !== null && layers.length !== layerCount) throw new DataError(`positions[${k}].layers has ${layers.length} layers, expected ${layerCount}`);
      layerCount = layers.length;
      layers.forEach((l, li) => {
        const top = arr(obj(l, `positions[${k}].layers[${li}]`).top, `positions[${k}].layers[${li}].top`);
        top.forEach((pred, ti) => {
          const where = `positions[${k}].layers[${li}].top[${ti}]`;
          const o = obj(pred, where);
          str(o.text, `${where}.text`);
          finite(o.prob, `${where}.prob`);
          finite(o.rank, `${where}.rank`);
        });
      });
    });
    if (d.selected !== undefined && d.selected !== null) predicted(d.selected, "selected", n);
    return {
      tokens: d.tokens as TokenData[],
      layer_labels: d.layer_labels as string[] | undefined,
      positions: positions as LayerPredictionsAtPosition[],
      selected: (d.selected as number | undefined) ?? undefined,
    };
  }

  private at(position: number | null): LayerPredictionsAtPosition | null {
    return this.data.positions.find((p) => p.position === position) ?? null;
  }

  update(data: unknown): void {
    this.data = this.check(data);
    if (this.pending !== null && this.at(this.pending)) {
      this.position = this.pending;
      this.pending = null;
    }
    this.draw();
  }

  draw(): void {
    this.reset();
    const computed = new Set(this.data.positions.map((p) => p.position));
    if (this.position === null || !computed.has(this.position)) {
      const fallback = this.data.selected ?? this.data.positions[this.data.positions.length - 1]?.position ?? null;
      this.position = fallback !== null && computed.has(fallback) ? fallback : null;
    }
    const live = Boolean(this.ctx.options.live);
    const n = this.data.tokens.length;
    const pickable = (i: number) => i >= 1 && (computed.has(i) || live);
    // A last box stands for the token after the text, when it can be shown.
    const boxes: TokenData[] = pickable(n) ? [...this.data.tokens, { text: "…next", special: true, is_input: false }] : this.data.tokens;
    this.strip = new TokenStrip(boxes, this.ctx.tooltip, {
      label: "Position: the token whose prediction to show",
      clickable: pickable,
      dimUnclickable: true,
      onSelect: (i) => {
        if (i === null) return;
        if (computed.has(i)) {
          this.position = i;
          this.pending = null;
          this.draw();
          this.ctx.emit("select-token", { position: i, token: boxes[i] });
        } else if (live && i >= 1) {
          this.pending = i;
          this.ctx.emit("request-layer-predictions", { position: i });
          this.draw();
        }
      },
      onActivate: (i) => i < n && this.ctx.emit("reveal-token", { position: i, token: this.data.tokens[i] }),
      tooltip: (i) =>
        tip(
          i < n ? quoted(this.data.tokens[i].text) : "the token after the text",
          computed.has(i) ? "each layer's prediction for this position is shown below" : pickable(i) ? "click to compute" : i === 0 ? "nothing predicts the first token" : "not computed for this position",
        ),
    });
    if (this.position !== null) this.strip.select(this.position, false);
    const header = h("div", { class: "ecco-note" });
    if (this.pending !== null) header.append(`Computing position ${this.pending}…`);
    else if (this.position === null) header.append("No position computed.");
    else {
      const p = this.position;
      const actual = this.data.tokens[p];
      header.append(
        `Predictions for position ${p}, after ${quoted(this.data.tokens[p - 1].text)}`,
        actual ? `; the actual token there is ${quoted(actual.text)}.` : " (the token after the text).",
        computed.size > 1 || live ? " Pick another position above." : "",
      );
    }
    this.ctx.body.append(h("div", { class: "ecco-title" }, "Position"), this.strip.el, header);
    const at = this.at(this.position);
    if (at) this.ctx.body.append(h("div", { class: "ecco-scroll" }, this.table(at)));
    this.ctx.body.append(
      legendRow(
        gradientLegend("probability", (t) => mix(this.ctx.theme, this.ctx.theme.hues.blue, t), [
          { at: 0, label: "0%" },
          { at: 0.5, label: "50%" },
          { at: 1, label: "100%" },
        ]),
        h("span", { class: "ecco-legend-item" }, "outlined: the actual token"),
      ),
    );
  }

  private cell(pred: Prediction, layer: number, isTarget: boolean): HTMLElement {
    const { theme } = this.ctx;
    const box = mix(theme, theme.hues.blue, pred.prob);
    const bar = h("div", { class: "ecco-minibar" });
    bar.style.width = `${Math.max(2, pred.prob * 100)}%`;
    bar.style.backgroundColor = css(textOn(theme, box));
    const td = h(
      "td",
      { class: `ecco-pred${isTarget ? " ecco-match" : ""}`, "data-prob": pred.prob, "data-rank": pred.rank },
      h("div", { class: "ecco-pred-text" }, quoted(pred.text)),
      bar,
      h("div", { class: "ecco-pred-meta" }, `${percent(pred.prob)} · #${pred.rank}`),
    );
    paint(theme, td, box);
    td.addEventListener("mouseenter", () =>
      this.ctx.tooltip.show(td, tip(quoted(pred.text), `${layerLabel(this.data.layer_labels, layer)} · rank ${pred.rank} · p = ${percent(pred.prob)}`, pred.id !== undefined ? ` · id ${pred.id}` : "")),
    );
    td.addEventListener("mouseleave", () => this.ctx.tooltip.hide());
    return td;
  }

  private table(at: LayerPredictionsAtPosition): HTMLElement {
    const k = Math.max(0, ...at.layers.map((l) => l.top.length));
    const hasTarget = at.layers.some((l) => l.target);
    const head = h("tr", {}, h("th", {}, "layer"));
    for (let i = 0; i < k; i++) head.appendChild(h("th", {}, `top ${i + 1}`));
    if (hasTarget) head.appendChild(h("th", {}, "actual token"));
    const table = h("table", { class: "ecco-layers", "aria-label": "Top predictions per layer" }, h("thead", {}, head));
    const body = h("tbody");
    const rows: HTMLElement[] = [];
    at.layers.forEach((layer, li) => {
      const label = layerLabel(this.data.layer_labels, li);
      const best = layer.top[0];
      const row = h("tr", {
        class: "ecco-layer-row",
        tabindex: li === this.activeRow ? 0 : -1,
        "data-layer": li,
        "aria-label": `${label}: ${best ? `${quoted(best.text)} ${percent(best.prob)}` : "no prediction"}`,
      });
      row.appendChild(h("th", {}, label));
      layer.top.forEach((pred) => row.appendChild(this.cell(pred, li, Boolean(layer.target && samePrediction(pred, layer.target)))));
      for (let i = layer.top.length; i < k; i++) row.appendChild(h("td"));
      if (hasTarget) row.appendChild(layer.target ? this.cell(layer.target, li, true) : h("td"));
      row.addEventListener("focus", () => {
        this.activeRow = li;
        rows.forEach((r, j) => r.classList.toggle("ecco-active", j === li));
      });
      row.addEventListener("keydown", (event) => {
        const next = roving(rows, li, event.key);
        if (next !== null) event.preventDefault();
      });
      rows.push(row);
      body.appendChild(row);
    });
    table.appendChild(body);
    return table;
  }

  select(position: number | null): void {
    if (position !== null) this.strip?.select(position);
  }
}
