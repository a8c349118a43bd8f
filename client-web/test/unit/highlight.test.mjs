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
