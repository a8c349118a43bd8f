import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "../lib/load.mjs";

const { parse, safeHref, plainText } = await load("markdown.ts");

/** kinds lists node kinds depth-first, to compare structure compactly. */
function kinds(nodes) {
  return nodes.map((n) => (n.c ? `${n.t}(${kinds(n.c)})` : n.t === "text" || n.t === "code" ? `${n.t}:${n.v}` : n.t)).join(" ");
}

test("markdown: inline and block forms", () => {
  const cases = [
    ["plain text", "text:plain text"],
    ["**bold**", "bold(text:bold)"],
    ["*it* and _it_", "italic(text:it) text: and  italic(text:it)"],
    ["__under__ ~~gone~~", "underline(text:under) text:  strike(text:gone)"],
    ["||secret||", "spoiler(text:secret)"],
    ["`a **b**`", "code:a **b**"],
    ["***both***", "bold(italic(text:both))"],
    ["snake_case_name", "text:snake_case_name"],
    ["a * b * c", "text:a * b * c"],
    ["\\*not italic\\*", "text:*not italic*"],
    ["line1\nline2", "text:line1 br text:line2"],
    ["> quoted\nafter", "quote(text:quoted) text:after"],
    [">>> all\nof it", "quote(text:all br text:of it)"],
    ["see https://example.com/a?b=c.", "text:see  link(text:https://example.com/a?b=c) text:."],
    ["[label](https://example.com)", "link(text:label)"],
    ["hi <@123> in <#456> cc <@&789> @everyone", "text:hi  mention text: in  mention text: cc  mention text:  everyone"],
    ["**unclosed", "text:**unclosed"],
  ];
  for (const [src, want] of cases) assert.equal(kinds(parse(src)), want, src);
});

test("markdown: code blocks keep language and content verbatim", () => {
  const n = parse("```go\nfunc main() { fmt.Println(\"<b>\") }\n```\nafter");
  assert.equal(n[0].t, "codeblock");
  assert.equal(n[0].lang, "go");
  assert.equal(n[0].v, 'func main() { fmt.Println("<b>") }');
  assert.equal(kinds(n.slice(1)), "text:after");
  const plain = parse("```\n**not bold**\n```");
  assert.deepEqual(plain, [{ t: "codeblock", lang: "", v: "**not bold**" }]);
});

test("markdown: mention IDs are parsed", () => {
  const [u, , c, , r] = parse("<@!42> <#7> <@&9>");
  assert.deepEqual(u, { t: "mention", kind: "user", id: "42" });
  assert.deepEqual(c, { t: "mention", kind: "channel", id: "7" });
  assert.deepEqual(r, { t: "mention", kind: "role", id: "9" });
});

const XSS = [
  "<script>window.__xss=1</script>",
  "<img src=x onerror=window.__xss=1>",
  "[click](javascript:window.__xss=1)",
  "[click](https://ok.example\" onclick=\"window.__xss=1)",
  "<javascript:alert(1)>",
  "<a href=\"javascript:alert(1)\">x</a>",
  "```html\n<img src=x onerror=alert(1)>\n```",
  "`<svg onload=alert(1)>`",
  "||<iframe src=javascript:alert(1)>||",
  "**<style>*{display:none}</style>**",
];

test("markdown: hostile input yields only text and http(s) links", () => {
  for (const src of XSS) {
    const walk = (nodes) => {
      for (const n of nodes) {
        assert.ok(["text", "br", "code", "codeblock", "bold", "italic", "underline", "strike", "spoiler", "quote", "link", "mention", "everyone"].includes(n.t), n.t);
        if (n.t === "link") assert.match(n.href, /^https?:\/\//, src);
        if (n.c) walk(n.c);
      }
    };
    walk(parse(src));
  }
  assert.equal(safeHref("javascript:alert(1)"), null);
  assert.equal(safeHref("data:text/html,<script>"), null);
  assert.equal(safeHref("https://example.com/x"), "https://example.com/x");
});

test("markdown: never throws and stays bounded on random and deeply nested input", () => {
  const alphabet = ["*", "_", "~", "|", "`", "\\", "<", ">", "@", "#", "[", "]", "(", ")", "h", "t", "p", ":", "/", "\n", " ", "a", "1", "&", "!"];
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let i = 0; i < 3000; i++) {
    let s = "";
    const n = Math.floor(rnd() * 80);
    for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    const out = parse(s);
    assert.ok(Array.isArray(out));
    plainText(out);
  }
  const deep = "**__~~||".repeat(500) + "x" + "||~~__**".repeat(500);
  const t0 = Date.now();
  parse(deep);
  assert.ok(Date.now() - t0 < 5000, "deep nesting parses in bounded time");
});

const { parseInvite } = await load("invite.ts");

test("invite links and codes", () => {
  globalThis.location = { origin: "http://127.0.0.1:1" };
  const cases = [
    ["http://a.example:8080/invite/hTKzmak9", { code: "hTKzmak9", origin: "http://a.example:8080" }],
    ["  https://b.example/invite/hearth%3AoWZndWlsZA/ ", { code: "hearth:oWZndWlsZA", origin: "https://b.example" }],
    ["hTKzmak9", { code: "hTKzmak9", origin: "http://127.0.0.1:1" }],
    ["hearth:oWZndWlsZA", { code: "hearth:oWZndWlsZA", origin: "http://127.0.0.1:1" }],
    ["https://b.example/channels/1", null],
    ["javascript:alert(1)", null],
    ["not a code!", null],
    ["", null],
  ];
  for (const [in_, want] of cases) assert.deepEqual(parseInvite(in_), want, in_);
});
