// Legends for color scales: a gradient bar with tick labels, or categorical swatches.
import { h } from "./dom";
import { css, type RGB, type Theme } from "./theme";

export interface Tick {
  at: number; // position along the bar, 0..1
  label: string;
}

/** A gradient legend; `color(t)` gives the scale's color at t in [0, 1]. */
export function gradientLegend(title: string, color: (t: number) => RGB, ticks: Tick[]): HTMLElement {
  const stops: string[] = [];
  for (let i = 0; i <= 10; i++) stops.push(`${css(color(i / 10))} ${i * 10}%`);
  const bar = h("div", { class: "ecco-legend-bar" });
  bar.style.background = `linear-gradient(to right, ${stops.join(", ")})`;
  const scale = h("div", { class: "ecco-legend-scale", role: "img", "aria-label": `${title} color scale` }, bar);
  for (const tick of ticks) {
    const cls = tick.at <= 0.001 ? "ecco-legend-tick ecco-start" : tick.at >= 0.999 ? "ecco-legend-tick ecco-end" : "ecco-legend-tick";
    const el = h("span", { class: cls }, tick.label);
    el.style.left = `${tick.at * 100}%`;
    scale.appendChild(el);
  }
  return h("div", { class: "ecco-legend-item ecco-legend-gradient" }, h("span", {}, title), scale);
}

/** Categorical swatches (e.g. one per NMF factor). */
export function swatchLegend(theme: Theme, items: { label: string; color: RGB }[]): HTMLElement {
  void theme;
  const wrap = h("div", { class: "ecco-legend-item" });
  for (const item of items) {
    const sw = h("span", { class: "ecco-swatch" });
    sw.style.backgroundColor = css(item.color);
    wrap.appendChild(h("span", { class: "ecco-legend-item" }, sw, item.label));
  }
  return wrap;
}

/** The input/output marking legend shared by token views. */
export function tokenKindLegend(): HTMLElement {
  return h(
    "div",
    { class: "ecco-legend-item" },
    h("span", { class: "ecco-legend-item" }, h("span", { class: "ecco-swatch ecco-input" }), "input"),
    h("span", { class: "ecco-legend-item" }, h("span", { class: "ecco-swatch ecco-output" }), "generated"),
  );
}

export function legendRow(...items: (HTMLElement | null)[]): HTMLElement {
  const row = h("div", { class: "ecco-legend" });
  for (const item of items) if (item) row.appendChild(item);
  return row;
}
