// The renderer's stylesheet. Every color comes from a CSS variable that defaults to a sensible value and
// picks up VS Code's --vscode-* (webview, notebooks) or JupyterLab's --jp-* theme variables when present.
// Installed once per document as a constructed stylesheet (not subject to a webview's style-src CSP),
// falling back to a <style> element that carries the host's nonce.

const CSS = `
.ecco-root {
  --ecco-fg: var(--vscode-editor-foreground, var(--jp-content-font-color1, var(--ecco-page-fg, #1f2328)));
  --ecco-bg: var(--vscode-editor-background, var(--jp-layout-color0, var(--ecco-page-bg, #ffffff)));
  --ecco-accent: var(--vscode-focusBorder, var(--jp-brand-color1, var(--ecco-page-accent, #0969da)));
  /* secondary colors follow the host when it names them, else derive from the actual fg/bg */
  --ecco-muted: var(--vscode-descriptionForeground, var(--jp-content-font-color2, color-mix(in srgb, var(--ecco-fg) 72%, var(--ecco-bg))));
  --ecco-border: var(--vscode-panel-border, var(--jp-border-color1, color-mix(in srgb, var(--ecco-fg) 25%, var(--ecco-bg))));
  --ecco-surface: var(--vscode-editorWidget-background, var(--jp-layout-color1, color-mix(in srgb, var(--ecco-fg) 5%, var(--ecco-bg))));
  --ecco-font: var(--vscode-font-family, var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif));
  --ecco-mono: var(--vscode-editor-font-family, var(--jp-code-font-family, ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace));
  position: relative;
  box-sizing: border-box;
  color: var(--ecco-fg);
  background: var(--ecco-bg);
  font-family: var(--ecco-font);
  font-size: 13px;
  line-height: 1.45;
  text-align: left;
  padding: 8px;
}
.ecco-root.ecco-light {
  --ecco-fg: #1f2328; --ecco-bg: #ffffff; --ecco-muted: #59636e; --ecco-border: #c8d1da;
  --ecco-accent: #0969da; --ecco-surface: #f6f8fa;
}
.ecco-root.ecco-dark {
  --ecco-fg: #d4d4d4; --ecco-bg: #1e1e1e; --ecco-muted: #9da5b4; --ecco-border: #454545;
  --ecco-accent: #3794ff; --ecco-surface: #252526;
}
.ecco-root *, .ecco-root *::before, .ecco-root *::after { box-sizing: border-box; }
.ecco-root .ecco-title { font-weight: 600; margin: 0 0 6px 0; font-size: 13px; }
.ecco-root .ecco-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 14px; margin: 0 0 8px 0; }
.ecco-root .ecco-field { display: inline-flex; align-items: center; gap: 6px; color: var(--ecco-muted); font-size: 12px; }
.ecco-root .ecco-seg { display: inline-flex; border: 1px solid var(--ecco-border); border-radius: 4px; overflow: hidden; }
.ecco-root button.ecco-btn {
  font: inherit; font-size: 12px; color: var(--ecco-fg); background: var(--ecco-bg); border: 0; margin: 0;
  padding: 2px 8px; cursor: pointer; border-right: 1px solid var(--ecco-border);
}
.ecco-root .ecco-seg button.ecco-btn:last-child { border-right: 0; }
.ecco-root button.ecco-btn[aria-pressed="true"], .ecco-root button.ecco-btn[aria-selected="true"] {
  background: color-mix(in srgb, var(--ecco-accent) 22%, var(--ecco-bg)); color: var(--ecco-fg);
  box-shadow: inset 0 -2px 0 var(--ecco-accent); font-weight: 600;
}
.ecco-root button.ecco-btn.ecco-solo { border: 1px solid var(--ecco-border); border-radius: 4px; }
.ecco-root button.ecco-btn:disabled { opacity: 0.5; cursor: default; }
.ecco-root select, .ecco-root input {
  font: inherit; font-size: 12px; color: var(--ecco-fg); background: var(--ecco-bg);
  border: 1px solid var(--ecco-border); border-radius: 3px; padding: 1px 4px;
}
.ecco-root :focus-visible { outline: 2px solid var(--ecco-accent); outline-offset: 1px; }
.ecco-root .ecco-note { color: var(--ecco-muted); font-size: 12px; margin: 6px 0; }
.ecco-root .ecco-error { color: #d1242f; border: 1px solid #d1242f; border-radius: 4px; padding: 6px 8px; white-space: pre-wrap; }
.ecco-root .ecco-tokens { display: flex; flex-wrap: wrap; align-items: flex-start; row-gap: 6px; padding: 2px 0; font-family: var(--ecco-mono); font-size: 13px; }
.ecco-root .ecco-token {
  display: inline-flex; flex-direction: column; align-items: stretch; min-width: 14px;
  margin-left: 5px; padding: 1px 4px; border: 1px solid var(--ecco-border); border-radius: 4px;
  white-space: pre; cursor: default; user-select: text; color: var(--ecco-fg);
}
.ecco-root .ecco-token.ecco-first { margin-left: 0; }
.ecco-root .ecco-token.ecco-cont { margin-left: 0; border-left: 1px dotted var(--ecco-border); border-top-left-radius: 0; border-bottom-left-radius: 0; }
.ecco-root .ecco-token.ecco-joined { border-right: 0; border-top-right-radius: 0; border-bottom-right-radius: 0; }
.ecco-root .ecco-token.ecco-input { border-style: dashed; }
.ecco-root .ecco-token.ecco-input.ecco-cont { border-left-style: dotted; }
.ecco-root .ecco-token.ecco-output { box-shadow: inset 0 -2px 0 var(--ecco-accent); }
.ecco-root .ecco-token.ecco-special { font-style: italic; color: var(--ecco-muted); }
.ecco-root .ecco-token.ecco-clickable { cursor: pointer; }
.ecco-root .ecco-token.ecco-disabled { opacity: 0.45; }
.ecco-root .ecco-token.ecco-selected { outline: 2px solid var(--ecco-accent); outline-offset: 1px; }
.ecco-root .ecco-token.ecco-hovered { outline: 1px dashed var(--ecco-accent); outline-offset: 1px; }
.ecco-root .ecco-token .ecco-sub { font-family: var(--ecco-font); font-size: 10px; line-height: 1.1; color: inherit; opacity: 0.85; }
/* Room for the widest share ("1.0e-3%") and a line even when empty, from the start: hovering changes the shares and must never move a token. */
.ecco-root .ecco-token .ecco-sub { min-width: 7.5ch; min-height: 1.1em; text-align: center; white-space: nowrap; font-variant-numeric: tabular-nums; }
.ecco-root .ecco-token .ecco-minibar { height: 3px; border-radius: 1px; margin-top: 1px; }
.ecco-root .ecco-break { flex-basis: 100%; height: 0; }
.ecco-root .ecco-legend { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 16px; margin: 8px 0 0 0; font-size: 11px; color: var(--ecco-muted); }
.ecco-root .ecco-legend-item { display: inline-flex; align-items: center; gap: 6px; }
.ecco-root .ecco-legend-scale { position: relative; width: 170px; height: 26px; }
.ecco-root .ecco-legend-bar { position: absolute; left: 0; right: 0; top: 0; height: 10px; border: 1px solid var(--ecco-border); border-radius: 2px; }
.ecco-root .ecco-legend-tick { position: absolute; top: 11px; transform: translateX(-50%); white-space: nowrap; font-size: 10px; }
.ecco-root .ecco-legend-tick.ecco-start { transform: none; }
.ecco-root .ecco-legend-tick.ecco-end { transform: translateX(-100%); }
.ecco-root .ecco-swatch { display: inline-block; width: 12px; height: 12px; border: 1px solid var(--ecco-border); border-radius: 2px; }
.ecco-root .ecco-swatch.ecco-input { border-style: dashed; }
.ecco-root .ecco-swatch.ecco-output { box-shadow: inset 0 -2px 0 var(--ecco-accent); }
.ecco-root .ecco-tooltip {
  position: absolute; z-index: 20; pointer-events: none; max-width: 340px; padding: 6px 8px;
  background: var(--ecco-surface); color: var(--ecco-fg); border: 1px solid var(--ecco-border); border-radius: 4px;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.25); font-size: 12px;
}
.ecco-root .ecco-tooltip[hidden] { display: none; }
.ecco-root .ecco-tip-head { font-weight: 600; margin-bottom: 4px; }
.ecco-root .ecco-mono { font-family: var(--ecco-mono); white-space: pre; }
.ecco-root table.ecco-table { border-collapse: collapse; font-size: 12px; }
.ecco-root table.ecco-table th { font-weight: 600; color: var(--ecco-muted); text-align: right; padding: 1px 6px; white-space: nowrap; }
.ecco-root table.ecco-table td { padding: 1px 4px; }
.ecco-root .ecco-alt-bar { height: 8px; background: var(--ecco-accent); border-radius: 1px; min-width: 1px; }
.ecco-root .ecco-alt-track { width: 90px; }
.ecco-root tr.ecco-actual td { font-weight: 700; }
.ecco-root .ecco-details { margin-top: 8px; padding: 6px 8px; border: 1px solid var(--ecco-border); border-radius: 4px; background: var(--ecco-surface); }
.ecco-root .ecco-scroll { overflow: auto; max-width: 100%; }
.ecco-root table.ecco-heat { border-collapse: separate; border-spacing: 1px; font-size: 11px; }
.ecco-root table.ecco-heat th { font-weight: 500; color: var(--ecco-muted); padding: 1px 4px; white-space: nowrap; }
.ecco-root table.ecco-heat th.ecco-col { font-family: var(--ecco-mono); color: var(--ecco-fg); vertical-align: bottom; white-space: pre; }
.ecco-root table.ecco-heat th.ecco-row { text-align: right; }
.ecco-root table.ecco-heat td { min-width: 38px; height: 20px; text-align: center; font-family: var(--ecco-mono); padding: 0 3px; border-radius: 2px; cursor: default; }
.ecco-root table.ecco-heat td.ecco-active { outline: 2px solid var(--ecco-accent); outline-offset: -1px; }
.ecco-root table.ecco-layers { border-collapse: separate; border-spacing: 2px; font-size: 12px; }
.ecco-root table.ecco-layers th { color: var(--ecco-muted); font-weight: 500; text-align: right; padding: 0 6px; white-space: nowrap; }
.ecco-root table.ecco-layers tr.ecco-active th { color: var(--ecco-fg); font-weight: 700; }
.ecco-root table.ecco-layers td.ecco-pred { min-width: 84px; padding: 2px 4px; border-radius: 3px; vertical-align: top; }
.ecco-root table.ecco-layers td.ecco-pred.ecco-match { outline: 2px solid var(--ecco-accent); outline-offset: -2px; }
.ecco-root .ecco-pred-text { font-family: var(--ecco-mono); white-space: pre; }
.ecco-root .ecco-pred-meta { font-size: 10px; opacity: 0.85; }
.ecco-root .ecco-factors { display: flex; flex-direction: column; gap: 2px; margin: 0 0 8px 0; }
.ecco-root .ecco-factor { display: flex; align-items: center; gap: 8px; padding: 2px 6px; border: 1px solid transparent; border-radius: 4px; cursor: pointer; font-size: 12px; }
.ecco-root .ecco-factor.ecco-active { border-color: var(--ecco-accent); }
.ecco-root .ecco-factor-label { min-width: 64px; }
.ecco-root .ecco-spark { display: block; }
.ecco-root .ecco-attn { display: grid; grid-template-columns: max-content minmax(40px, 220px) max-content; align-items: start; }
.ecco-root .ecco-attn-lines { width: 100%; }
.ecco-root .ecco-attn-col { display: flex; flex-direction: column; font-family: var(--ecco-mono); font-size: 12px; }
.ecco-root .ecco-attn-row { height: 22px; line-height: 20px; padding: 0 6px; border: 1px solid transparent; border-radius: 3px; white-space: pre; cursor: pointer; }
.ecco-root .ecco-attn-col.ecco-left .ecco-attn-row { text-align: right; }
.ecco-root .ecco-attn-row.ecco-selected { border-color: var(--ecco-accent); }
.ecco-root [role="tablist"] { display: flex; flex-wrap: wrap; gap: 2px; border-bottom: 1px solid var(--ecco-border); margin-bottom: 8px; }
.ecco-root button.ecco-tab { font: inherit; font-size: 12px; background: transparent; color: var(--ecco-muted); border: 0; border-bottom: 2px solid transparent; padding: 4px 10px; cursor: pointer; }
.ecco-root button.ecco-tab[aria-selected="true"] { color: var(--ecco-fg); border-bottom-color: var(--ecco-accent); }
`;

const MARK = "__eccoRenderStyles";

/** Installs the stylesheet into the element's document once. */
export function installStyles(doc: Document, nonce?: string): void {
  const holder = doc as unknown as Record<string, unknown>;
  if (holder[MARK]) return;
  holder[MARK] = true;
  const Sheet = (doc.defaultView as (Window & typeof globalThis) | null)?.CSSStyleSheet;
  if (Sheet && "adoptedStyleSheets" in doc && "replaceSync" in Sheet.prototype) {
    const sheet = new Sheet();
    sheet.replaceSync(CSS);
    doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
    return;
  }
  const style = doc.createElement("style");
  if (nonce) style.nonce = nonce;
  style.textContent = CSS;
  doc.head.appendChild(style);
}
