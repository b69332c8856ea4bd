// Colors computed for the current theme. Scales mix a saturated hue into the actual background color,
// so a value of zero looks like the page and strong values stand out in light and dark themes alike;
// text on a colored box picks whichever of the theme's two base colors contrasts more.

export type RGB = readonly [number, number, number];

export interface Hues {
  blue: RGB;
  orange: RGB;
  red: RGB;
  green: RGB;
  purple: RGB;
}

export interface Theme {
  dark: boolean;
  bg: RGB;
  fg: RGB;
  hues: Hues;
  categorical: RGB[];
}

const LIGHT_HUES: Hues = {
  blue: [31, 111, 235],
  orange: [217, 82, 15],
  red: [201, 42, 42],
  green: [47, 148, 68],
  purple: [112, 72, 232],
};
const DARK_HUES: Hues = {
  blue: [88, 150, 255],
  orange: [255, 146, 77],
  red: [255, 107, 107],
  green: [105, 219, 124],
  purple: [167, 139, 250],
};
const LIGHT_CATEGORICAL: RGB[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
];
const DARK_CATEGORICAL: RGB[] = [
  [95, 168, 232], [255, 160, 77], [94, 211, 94], [255, 107, 107], [183, 156, 240],
  [192, 138, 122], [245, 155, 216], [176, 176, 176], [222, 222, 74], [79, 216, 232],
];

/** Parses the `rgb(...)`/`rgba(...)` strings that getComputedStyle returns. */
export function parseRgb(text: string): { rgb: RGB; alpha: number } | null {
  const m = text.match(/rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)(?:\s*[,/]\s*([\d.]+%?))?\s*\)/);
  if (!m) return null;
  let alpha = 1;
  if (m[4] !== undefined) alpha = m[4].endsWith("%") ? parseFloat(m[4]) / 100 : parseFloat(m[4]);
  return { rgb: [Number(m[1]), Number(m[2]), Number(m[3])], alpha };
}

function channel(c: number): number {
  const s = c / 255;
  return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
}

export function luminance(rgb: RGB): number {
  return 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]);
}

export function contrast(a: RGB, b: RGB): number {
  const la = luminance(a);
  const lb = luminance(b);
  return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
}

/** Reads the resolved theme colors of a rendered root (its CSS variables, resolved by the browser). */
export function readTheme(root: HTMLElement): Theme {
  const probe = root.ownerDocument.createElement("span");
  probe.style.color = "var(--ecco-fg)";
  probe.style.backgroundColor = "var(--ecco-bg)";
  probe.style.display = "none";
  root.appendChild(probe);
  const style = getComputedStyle(probe);
  const fg = parseRgb(style.color)?.rgb ?? ([31, 35, 40] as RGB);
  const bgParsed = parseRgb(style.backgroundColor);
  probe.remove();
  let bg: RGB = bgParsed && bgParsed.alpha > 0.5 ? bgParsed.rgb : [255, 255, 255];
  if (!bgParsed || bgParsed.alpha <= 0.5) bg = luminance(fg) > 0.4 ? [30, 30, 30] : [255, 255, 255];
  const dark = luminance(bg) < luminance(fg);
  return {
    dark,
    bg,
    fg,
    hues: dark ? DARK_HUES : LIGHT_HUES,
    categorical: dark ? DARK_CATEGORICAL : LIGHT_CATEGORICAL,
  };
}

/** The color a fraction t in [0, 1] of the way from the background to the hue. */
export function mix(theme: Theme, hue: RGB, t: number): RGB {
  const f = Number.isFinite(t) ? Math.min(1, Math.max(0, t)) : 0;
  return [
    Math.round(theme.bg[0] + (hue[0] - theme.bg[0]) * f),
    Math.round(theme.bg[1] + (hue[1] - theme.bg[1]) * f),
    Math.round(theme.bg[2] + (hue[2] - theme.bg[2]) * f),
  ];
}

export function css(rgb: RGB): string {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** The text color (theme foreground or background) that reads best on the given box color. */
export function textOn(theme: Theme, box: RGB): RGB {
  return contrast(theme.fg, box) >= contrast(theme.bg, box) ? theme.fg : theme.bg;
}

/** Paints an element's background and picks its text color for contrast; null clears both. */
export function paint(theme: Theme, el: HTMLElement | SVGElement, box: RGB | null): void {
  if (box === null) {
    el.style.backgroundColor = "";
    el.style.color = "";
    return;
  }
  el.style.backgroundColor = css(box);
  el.style.color = css(textOn(theme, box));
}

export function factorColor(theme: Theme, index: number): RGB {
  return theme.categorical[index % theme.categorical.length];
}
