import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "../lib/load.mjs";

const { highlight, langOf } = await load("highlight.ts");

test("highlight: tokens cover the input exactly and classify the obvious", () => {
  const cases = [
    ["go", 'func main() { // hi\n\tx := "s" + 42\n}', { kw: ["func"], com: ["// hi"], str: ['"s"'], num: ["42"] }],
    ["py", "def f(x):\n    return None  # done", { kw: ["def", "return"], lit: ["None"], com: ["# done"] }],
    ["js", "const a = /* c */ 'x';", { kw: ["const"], com: ["/* c */"], str: ["'x'"] }],
  ];
  for (const [lang, code, want] of cases) {
    const toks = highlight(code, lang);
    assert.equal(toks.map((t) => t.v).join(""), code, "tokens rejoin to the source");
    for (const [k, vals] of Object.entries(want)) {
      for (const v of vals) assert.ok(toks.some((t) => t.k === k && t.v.includes(v)), `${lang}: ${k} ${v}`);
    }
  }
});

test("highlight: unknown languages are one plain token", () => {
  assert.deepEqual(highlight("<b>x</b>", "brainfuck"), [{ k: "", v: "<b>x</b>" }]);
  assert.equal(langOf("TypeScript"), "ts");
  assert.equal(langOf("golang"), "go");
  assert.equal(langOf("nope"), null);
});

const { readable, contrast } = await load("color.ts");

test("role colours are adjusted to WCAG AA contrast per theme", () => {
  const rgb = (s) => s.match(/\d+/g).map(Number);
  for (const n of [0xe67e22, 0xffff00, 0x0000ff, 0x3ba55c, 0x999999, 0xffffff, 0x010101]) {
    assert.ok(contrast(rgb(readable(n, "light")), [0xd4, 0xd7, 0xdc]) >= 4.5, `light ${n.toString(16)}`);
    assert.ok(contrast(rgb(readable(n, "dark")), [0x43, 0x45, 0x4c]) >= 4.5, `dark ${n.toString(16)}`);
  }
  assert.equal(readable(0xffffff, "dark"), "rgb(255, 255, 255)", "a colour that passes is kept");
  assert.equal(readable(0, "dark"), undefined, "0 means no colour");
});
