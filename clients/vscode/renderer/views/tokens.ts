// Output sequence: the tokens as boxes, input and generated marked; tokens stream in via appendToken.
import { h } from "../dom";
import { legendRow, tokenKindLegend } from "../legend";
import { quoted, TokenStrip } from "../tokens";
import { tip } from "../tooltip";
import type { StreamToken, TokenData, TokensData } from "../types";
import { checkTokens, obj } from "../validate";
import { BaseView } from "../view";

export function tokenSummary(tokens: readonly TokenData[]): string {
  const inputs = tokens.filter((t) => t.is_input).length;
  return `${tokens.length} tokens: ${inputs} input, ${tokens.length - inputs} generated`;
}

export function tokenTip(tokens: readonly TokenData[], i: number, ...extra: (Node | string)[]): HTMLElement {
  const t = tokens[i];
  const facts = [`position ${i}`, t.id !== undefined ? `id ${t.id}` : "", t.is_input ? "input" : "generated"];
  return tip(quoted(t.text), h("div", {}, facts.filter(Boolean).join(" · ")), ...extra);
}

export class TokensView extends BaseView<TokensData> {
  private strip: TokenStrip | null = null;
  private summary: HTMLElement | null = null;
  private selected: number | null = null;

  protected check(data: unknown): TokensData {
    const d = obj(data, "data");
    checkTokens(d);
    return { tokens: [...(d.tokens as TokenData[])] };
  }

  draw(): void {
    this.reset();
    const tokens = this.data.tokens;
    this.summary = h("div", { class: "ecco-note" }, tokenSummary(tokens));
    this.strip = new TokenStrip(tokens, this.ctx.tooltip, {
      label: "Tokens",
      onSelect: (i) => {
        this.selected = i;
        if (i !== null) this.ctx.emit("select-token", { position: i, token: tokens[i] });
      },
      onActivate: (i) => this.ctx.emit("reveal-token", { position: i, token: tokens[i] }),
      tooltip: (i) => tokenTip(this.data.tokens, i),
    });
    if (this.selected !== null) this.strip.select(this.selected, false);
    this.ctx.body.append(this.strip.el, this.summary, legendRow(tokenKindLegend()));
  }

  appendToken(token: StreamToken): void {
    const t: TokenData = { text: token.text, id: token.id, is_input: token.is_input, word_start: token.word_start, special: token.special };
    this.data.tokens.push(t);
    this.strip?.append(t);
    if (this.summary) this.summary.textContent = tokenSummary(this.data.tokens);
  }

  select(position: number | null): void {
    this.strip?.select(position);
  }
}
