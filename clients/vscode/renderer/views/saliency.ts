// Saliency: hovering or selecting a generated token colors the tokens before it by their attribution.
// "detailed" adds a bar and the token's share (|score| / sum of |scores|) under each box. A method
// switcher appears when several methods were computed; contrastive methods show the foil.
import { clear, h, num, percent } from "../dom";
import { gradientLegend, legendRow, tokenKindLegend } from "../legend";
import { css, mix, paint, type RGB } from "../theme";
import { quoted, TokenStrip } from "../tokens";
import type { AttributionMethod, SaliencyData, TokenData, TokenRef } from "../types";
import { arr, checkTokens, DataError, obj, position, str } from "../validate";
import { BaseView, segmented } from "../view";
import { tokenTip } from "./tokens";

type Style = "minimal" | "detailed";

const METHOD_LABELS: Record<string, string> = {
  gradient: "Gradient",
  grad_x_input: "Gradient × input",
  ig: "Integrated gradients",
  integrated_gradients: "Integrated gradients",
  occlusion: "Occlusion",
  contrastive: "Contrastive",
};

export function methodLabel(method: AttributionMethod): string {
  return method.label ?? METHOD_LABELS[method.name] ?? method.name;
}

interface Row {
  scores: number[]; // for positions before the target
  maxAbs: number;
  sumAbs: number;
}

export class SaliencyView extends BaseView<SaliencyData> {
  private methodIndex = 0;
  private style: Style = this.ctx.options.style ?? "minimal";
  private target: number | null = null;
  private strip: TokenStrip | null = null;
  private foilNote: HTMLElement | null = null;
  private initialised = false;

  protected check(data: unknown): SaliencyData {
    const d = obj(data, "data");
    const n = checkTokens(d);
    const methods = arr(d.methods, "methods");
    if (methods.length === 0) throw new DataError("methods must list at least one attribution method");
    methods.forEach((m, k) => {
      const method = obj(m, `methods[${k}]`);
      str(method.name, `methods[${k}].name`);
      const targets = arr(method.targets, `methods[${k}].targets`);
      targets.forEach((t, r) => {
        const p = position(t, `methods[${k}].targets[${r}]`, n);
        if (p === 0) throw new DataError(`methods[${k}].targets[${r}] = 0: the first token has nothing before it`);
      });
      const values = arr(method.values, `methods[${k}].values`, targets.length);
      values.forEach((row, r) => arr(row, `methods[${k}].values[${r}]`, n));
      if (method.foils !== undefined) arr(method.foils, `methods[${k}].foils`, targets.length);
    });
    const style = d.style === "detailed" || d.style === "minimal" ? d.style : undefined;
    return { tokens: d.tokens as TokenData[], methods: methods as AttributionMethod[], style };
  }

  private get method(): AttributionMethod {
    return this.data.methods[Math.min(this.methodIndex, this.data.methods.length - 1)];
  }

  private signed(): boolean {
    return this.method.values.some((row, r) => row.some((v, j) => j < this.method.targets[r] && v < 0));
  }

  private row(target: number): Row | null {
    const r = this.method.targets.indexOf(target);
    if (r < 0) return null;
    const scores = this.method.values[r].slice(0, target).map((v) => (Number.isFinite(v) ? v : 0));
    const abs = scores.map(Math.abs);
    return { scores, maxAbs: Math.max(...abs, 1e-12), sumAbs: abs.reduce((a, b) => a + b, 0) || 1e-12 };
  }

  private foil(target: number): TokenRef | null {
    const r = this.method.targets.indexOf(target);
    return r >= 0 ? (this.method.foils?.[r] ?? null) : null;
  }

  private color(score: number, maxAbs: number): RGB {
    const { theme } = this.ctx;
    return mix(theme, score >= 0 ? theme.hues.purple : theme.hues.red, Math.abs(score) / maxAbs);
  }

  draw(): void {
    this.reset();
    if (!this.initialised) {
      this.initialised = true;
      this.style = this.ctx.options.style ?? this.data.style ?? "minimal";
      const wanted = this.ctx.options.method;
      const found = wanted ? this.data.methods.findIndex((m) => m.name === wanted) : -1;
      if (found >= 0) this.methodIndex = found;
    }
    if (this.target !== null && !this.method.targets.includes(this.target)) this.target = null;
    if (this.target === null) this.target = this.method.targets[0] ?? null;

    const toolbar = h("div", { class: "ecco-toolbar" });
    if (this.data.methods.length > 1) {
      toolbar.appendChild(
        segmented(
          "Method",
          this.data.methods.map((m, k) => ({ value: String(k), label: methodLabel(m) })),
          String(this.methodIndex),
          (v) => {
            this.methodIndex = Number(v);
            this.draw();
          },
        ),
      );
    } else {
      toolbar.appendChild(h("span", { class: "ecco-field" }, "Method", h("strong", {}, methodLabel(this.method))));
    }
    toolbar.appendChild(
      segmented(
        "Style",
        [
          { value: "minimal", label: "Minimal" },
          { value: "detailed", label: "Detailed" },
        ],
        this.style,
        (v) => {
          this.style = v as Style;
          this.draw();
        },
      ),
    );
    const targets = new Set(this.method.targets);
    this.strip = new TokenStrip(this.data.tokens, this.ctx.tooltip, {
      label: "Tokens; select a generated token to see what it attributes to",
      clickable: (i) => targets.has(i),
      onHover: () => this.paintAll(),
      onSelect: (i) => {
        if (i === null) return;
        this.target = i;
        this.paintAll();
        this.ctx.emit("select-token", { position: i, token: this.data.tokens[i], method: this.method.name });
      },
      onActivate: (i) => this.ctx.emit("reveal-token", { position: i, token: this.data.tokens[i] }),
      tooltip: (i) => this.tipFor(i),
    });
    if (this.style === "detailed") {
      this.data.tokens.forEach((_, i) => {
        this.strip?.box(i).append(h("span", { class: "ecco-minibar" }), h("span", { class: "ecco-sub" }, " "));
      });
    }
    this.foilNote = h("div", { class: "ecco-details", "aria-live": "polite" });
    const legendColor = this.signed()
      ? (t: number) => this.color(2 * t - 1, 1)
      : (t: number) => this.color(t, 1);
    const ticks = this.signed()
      ? [
          { at: 0, label: "−max" },
          { at: 0.5, label: "0" },
          { at: 1, label: "+max" },
        ]
      : [
          { at: 0, label: "0" },
          { at: 1, label: "max" },
        ];
    this.ctx.body.append(
      toolbar,
      this.strip.el,
      legendRow(gradientLegend("attribution (of the token's largest)", legendColor, ticks), tokenKindLegend()),
      this.foilNote,
    );
    if (this.target !== null) this.strip.select(this.target, false);
    this.paintAll();
  }

  /** The target being shown: the hovered generated token, else the selected one. */
  private shown(): number | null {
    const hovered = this.strip?.hovered ?? null;
    if (hovered !== null && this.method.targets.includes(hovered)) return hovered;
    return this.target;
  }

  private paintAll(): void {
    const strip = this.strip;
    if (!strip) return;
    const target = this.shown();
    const row = target === null ? null : this.row(target);
    for (let j = 0; j < strip.length; j++) {
      const box = strip.box(j);
      const score = row && target !== null && j < target ? row.scores[j] : null;
      paint(this.ctx.theme, box, score === null || !row ? null : this.color(score, row.maxAbs));
      box.dataset.score = score === null ? "" : String(score);
      if (this.style === "detailed") {
        const bar = box.querySelector<HTMLElement>(".ecco-minibar");
        const sub = box.querySelector<HTMLElement>(".ecco-sub");
        const share = score === null || !row ? null : Math.abs(score) / row.sumAbs;
        if (bar) {
          bar.style.width = share === null ? "0" : `${Math.max(2, share * 100)}%`;
          bar.style.backgroundColor = share === null ? "" : css(this.ctx.theme.fg);
        }
        if (sub) sub.textContent = share === null ? " " : percent(share);
      }
    }
    this.showFoil(target);
  }

  private showFoil(target: number | null): void {
    if (!this.foilNote) return;
    clear(this.foilNote);
    if (target === null) {
      this.foilNote.append("Hover or select a generated token to see which earlier tokens drove it.");
      return;
    }
    const token = quoted(this.data.tokens[target].text);
    const foil = this.foil(target);
    if (foil) {
      this.foilNote.append(
        h("strong", {}, "Contrastive: "),
        `why ${token} rather than `,
        h("span", { class: "ecco-mono ecco-foil" }, quoted(foil.text)),
        "? Purple tokens pushed toward the output, red toward the foil.",
      );
    } else {
      this.foilNote.append(`${methodLabel(this.method)} attribution of ${token} (position ${target}) to the tokens before it.`);
    }
  }

  private tipFor(i: number): HTMLElement {
    const target = this.shown();
    if (this.method.targets.includes(i) && i === target) {
      return tokenTip(this.data.tokens, i, h("div", {}, "the colored tokens before it explain this token"));
    }
    const row = target === null ? null : this.row(target);
    if (row && target !== null && i < target) {
      const s = row.scores[i];
      return tokenTip(this.data.tokens, i, h("div", {}, `score ${num(s)} · ${percent(Math.abs(s) / row.sumAbs)} of ${quoted(this.data.tokens[target].text)}`));
    }
    return tokenTip(this.data.tokens, i, this.method.targets.includes(i) ? h("div", {}, "click to explain this token") : "");
  }

  select(position: number | null): void {
    if (position !== null && this.method.targets.includes(position)) this.strip?.select(position);
  }
}
