// Token probability: each token colored by the probability the model gave it (or its surprisal in
// bits); hovering or focusing shows the top alternatives; the selected token's alternatives stay below.
import { clear, h, num, percent } from "../dom";
import { gradientLegend, legendRow, tokenKindLegend } from "../legend";
import { mix, paint, type RGB } from "../theme";
import { quoted, TokenStrip } from "../tokens";
import type { Alternative, ProbabilityData, StreamToken, TokenData } from "../types";
import { arr, checkTokens, DataError, finite, obj } from "../validate";
import { BaseView, segmented } from "../view";
import { tokenTip } from "./tokens";

type Scale = "probability" | "surprisal";

export function alternativesTable(alts: readonly Alternative[], actual?: TokenData): HTMLElement {
  const table = h("table", { class: "ecco-table ecco-alts" });
  const top = Math.max(...alts.map((a) => a.prob), 1e-12);
  alts.forEach((alt, i) => {
    const bar = h("div", { class: "ecco-alt-bar" });
    bar.style.width = `${Math.max(1, (alt.prob / top) * 100)}%`;
    const isActual = actual !== undefined && (alt.id !== undefined && actual.id !== undefined ? alt.id === actual.id : alt.text === actual.text);
    table.appendChild(
      h(
        "tr",
        { class: isActual ? "ecco-actual" : "" },
        h("th", {}, `${i + 1}`),
        h("td", { class: "ecco-mono" }, quoted(alt.text)),
        h("td", { class: "ecco-alt-track" }, bar),
        h("td", {}, percent(alt.prob)),
      ),
    );
  });
  return table;
}

export class ProbabilityView extends BaseView<ProbabilityData> {
  private scale: Scale = this.ctx.options.scale ?? "probability";
  private strip: TokenStrip | null = null;
  private details: HTMLElement | null = null;
  private legend: HTMLElement | null = null;
  private selected: number | null = null;

  protected check(data: unknown): ProbabilityData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const probs = arr(d.probs, "probs", n).map((p, i) => (p === null ? null : finite(p, `probs[${i}]`)));
    if (probs.some((p) => p !== null && (p < 0 || p > 1.000001))) throw new DataError("probs must lie in [0, 1]");
    const top = d.top === undefined ? undefined : (arr(d.top, "top", n) as (Alternative[] | null)[]);
    const ranks = d.ranks === undefined ? undefined : (arr(d.ranks, "ranks", n) as (number | null)[]);
    const entropy = d.entropy === undefined ? undefined : (arr(d.entropy, "entropy", n) as (number | null)[]);
    return { tokens: [...(d.tokens as TokenData[])], probs, top: top && [...top], ranks: ranks && [...ranks], entropy: entropy && [...entropy] };
  }

  private surprisalMax(): number {
    let max = 8;
    for (const p of this.data.probs) if (p !== null && p > 0) max = Math.max(max, -Math.log2(p));
    return Math.min(24, Math.ceil(max));
  }

  private color(t: number): RGB {
    const { theme } = this.ctx;
    return mix(theme, this.scale === "probability" ? theme.hues.blue : theme.hues.orange, t);
  }

  private amount(p: number | null): number | null {
    if (p === null) return null;
    if (this.scale === "probability") return p;
    return p <= 0 ? 1 : Math.min(1, -Math.log2(p) / this.surprisalMax());
  }

  draw(): void {
    this.reset();
    const toolbar = h(
      "div",
      { class: "ecco-toolbar" },
      segmented(
        "Color by",
        [
          { value: "probability", label: "Probability" },
          { value: "surprisal", label: "Surprisal" },
        ],
        this.scale,
        (v) => {
          this.scale = v as Scale;
          this.draw();
        },
      ),
    );
    this.strip = new TokenStrip(this.data.tokens, this.ctx.tooltip, {
      label: "Tokens colored by probability",
      onSelect: (i) => {
        this.selected = i;
        this.showDetails();
        if (i !== null) this.ctx.emit("select-token", { position: i, token: this.data.tokens[i] });
      },
      onActivate: (i) => this.ctx.emit("reveal-token", { position: i, token: this.data.tokens[i] }),
      tooltip: (i) => this.tipFor(i),
    });
    this.data.tokens.forEach((_, i) => this.paintToken(i));
    this.details = h("div", { class: "ecco-details", "aria-live": "polite" });
    this.legend = legendRow(this.scaleLegend(), tokenKindLegend());
    this.ctx.body.append(toolbar, this.strip.el, this.legend, this.details);
    if (this.selected !== null) this.strip.select(this.selected, false);
    this.showDetails();
  }

  private scaleLegend(): HTMLElement {
    if (this.scale === "probability") {
      return gradientLegend("probability", (t) => this.color(t), [
        { at: 0, label: "0%" },
        { at: 0.5, label: "50%" },
        { at: 1, label: "100%" },
      ]);
    }
    const max = this.surprisalMax();
    return gradientLegend("surprisal", (t) => this.color(t), [
      { at: 0, label: "0 bits" },
      { at: 0.5, label: `${max / 2}` },
      { at: 1, label: `≥${max} bits` },
    ]);
  }

  private paintToken(i: number): void {
    if (!this.strip) return;
    const t = this.amount(this.data.probs[i]);
    const box = this.strip.box(i);
    paint(this.ctx.theme, box, t === null ? null : this.color(t));
    const p = this.data.probs[i];
    box.dataset.prob = p === null ? "" : String(p);
  }

  private facts(i: number): string {
    const p = this.data.probs[i];
    if (p === null) return "no probability (nothing precedes it, or not computed)";
    const parts = [`p = ${percent(p)}`, `${num(p > 0 ? -Math.log2(p) : Infinity)} bits`];
    const rank = this.data.ranks?.[i];
    if (rank !== null && rank !== undefined) parts.push(`rank ${rank}`);
    const entropy = this.data.entropy?.[i];
    if (entropy !== null && entropy !== undefined) parts.push(`entropy ${num(entropy)} nats`);
    return parts.join(" · ");
  }

  private tipFor(i: number): HTMLElement {
    const alts = this.data.top?.[i];
    return tokenTip(
      this.data.tokens,
      i,
      h("div", {}, this.facts(i)),
      alts && alts.length ? h("div", {}, h("div", { class: "ecco-note" }, "the model's top alternatives"), alternativesTable(alts, this.data.tokens[i])) : "",
    );
  }

  private showDetails(): void {
    if (!this.details) return;
    clear(this.details);
    const i = this.selected;
    if (i === null) {
      this.details.append("Select a token (click, or arrow keys) to keep its alternatives here; hover for a quick look.");
      return;
    }
    const alts = this.data.top?.[i];
    this.details.append(
      h("div", { class: "ecco-tip-head ecco-mono" }, `${quoted(this.data.tokens[i].text)} at position ${i}`),
      h("div", {}, this.facts(i)),
      alts && alts.length ? alternativesTable(alts, this.data.tokens[i]) : h("div", { class: "ecco-note" }, "no alternatives recorded"),
    );
  }

  appendToken(token: StreamToken): void {
    const t: TokenData = { text: token.text, id: token.id, is_input: token.is_input, word_start: token.word_start, special: token.special };
    const n = this.data.tokens.length;
    this.data.tokens.push(t);
    this.data.probs.push(token.prob ?? null);
    if (this.data.top || token.top) {
      this.data.top = this.data.top ?? new Array<Alternative[] | null>(n).fill(null);
      this.data.top.push(token.top ?? null);
    }
    if (this.data.ranks || token.rank !== undefined) {
      this.data.ranks = this.data.ranks ?? new Array<number | null>(n).fill(null);
      this.data.ranks.push(token.rank ?? null);
    }
    if (this.data.entropy || token.entropy !== undefined) {
      this.data.entropy = this.data.entropy ?? new Array<number | null>(n).fill(null);
      this.data.entropy.push(token.entropy ?? null);
    }
    if (!this.strip) return;
    this.strip.append(t);
    if (this.scale === "surprisal") this.data.tokens.forEach((_, i) => this.paintToken(i));
    else this.paintToken(n);
    if (this.legend && this.scale === "surprisal") this.legend.replaceChild(this.scaleLegend(), this.legend.firstChild as Node);
  }

  select(position: number | null): void {
    this.strip?.select(position);
  }
}
