// color adjusts user-chosen colours (role colours) so that text drawn in them keeps WCAG AA
// contrast (4.5:1) on the current theme's backgrounds: darker on light themes, lighter on dark.

type RGB = [number, number, number];

function lum([r, g, b]: RGB): number {
  const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}

/** contrast is the WCAG contrast ratio of two colours. */
export function contrast(a: RGB, b: RGB): number {
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/** The most demanding background text sits on in each theme (hovered and selected rows). */
const WORST_BG: Record<string, RGB> = { dark: [0x43, 0x45, 0x4c], light: [0xd4, 0xd7, 0xdc] };

const cache = new Map<string, string>();

/** readable returns a CSS colour for role colour n (0x RRGGBB) in theme, adjusted to 4.5:1; undefined for n 0 (no colour). */
export function readable(n: number, theme: string): string | undefined {
  if (!n) return undefined;
  const key = n + theme;
  const hit = cache.get(key);
  if (hit) return hit;
  const bg = WORST_BG[theme] ?? WORST_BG.dark;
  const target: RGB = theme === "light" ? [0, 0, 0] : [255, 255, 255];
  const base: RGB = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  let c = base;
  for (let t = 0; t <= 1 && contrast(c, bg) < 4.5; t += 0.05) {
    c = base.map((v, i) => Math.round(v + (target[i] - v) * t)) as RGB;
  }
  const out = `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  cache.set(key, out);
  return out;
}
