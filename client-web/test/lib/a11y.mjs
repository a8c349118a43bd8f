// a11y checks a page the way an audit would: every interactive element has an accessible name
// (from Chromium's own accessibility tree), and visible text meets WCAG AA contrast against the
// background it is drawn on.

const INTERACTIVE = new Set(["button", "textbox", "combobox", "checkbox", "radio", "slider", "link", "searchbox", "listbox", "option", "menuitem", "tab", "switch", "spinbutton"]);

/** unnamedControls returns the roles and DOM hints of interactive nodes without a name. */
export async function unnamedControls(page) {
  const cdp = await page.context().newCDPSession(page);
  const { nodes } = await cdp.send("Accessibility.getFullAXTree");
  await cdp.detach();
  return nodes
    .filter((n) => !n.ignored && INTERACTIVE.has(n.role?.value) && !String(n.name?.value ?? "").trim())
    .map((n) => `${n.role.value} (backend node ${n.backendDOMNodeId})`);
}

/** lowContrast returns text that fails WCAG AA (4.5:1, or 3:1 for large text), with its ratio. */
export async function lowContrast(page) {
  return page.evaluate(() => {
    const parse = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/);
      if (!m) return null;
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
    };
    const lum = ({ r, g, b }) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const blend = (top, bottom) => ({
      r: top.r * top.a + bottom.r * (1 - top.a),
      g: top.g * top.a + bottom.g * (1 - top.a),
      b: top.b * top.a + bottom.b * (1 - top.a),
      a: 1,
    });
    const background = (el) => {
      const layers = [];
      for (let e = el; e; e = e.parentElement) {
        const c = parse(getComputedStyle(e).backgroundColor);
        if (c && c.a > 0) {
          layers.push(c);
          if (c.a >= 1) break;
        }
      }
      let bg = { r: 255, g: 255, b: 255, a: 1 };
      for (let i = layers.length - 1; i >= 0; i--) bg = blend(layers[i], bg);
      return bg;
    };
    const opacity = (el) => {
      let o = 1;
      for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
      return o;
    };
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (!t.textContent.trim()) continue;
      const el = t.parentElement;
      const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      if (r.width === 0 || r.height === 0 || cs.visibility === "hidden" || el.closest(".sr-only, pre.codeblock, .spoiler:not(.open), [aria-hidden=true]")) continue;
      if (el.closest("button:disabled, input:disabled, textarea:disabled")) continue; // WCAG exempts inactive controls
      const bg = background(el);
      const fg0 = parse(cs.color);
      const fg = blend({ ...fg0, a: fg0.a * opacity(el) }, bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      const ratio = (l1 + 0.05) / (l2 + 0.05);
      const size = parseFloat(cs.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) out.push(`${ratio.toFixed(2)}:1 "${t.textContent.trim().slice(0, 40)}" (${el.tagName.toLowerCase()}.${[...el.classList].join(".")})`);
    }
    return [...new Set(out)];
  });
}
