// markdown parses Discord-flavoured message markdown into a small AST.
//
// The renderer (render.tsx) turns this AST into Preact VNodes. Nothing in a message ever becomes
// HTML: the parser only produces plain strings and node kinds, so a message cannot inject markup
// or script. Links are kept only when their scheme is http or https.

/** One node of a parsed message. */
export type MdNode =
  | { t: "text"; v: string }
  | { t: "br" }
  | { t: "bold" | "italic" | "underline" | "strike" | "spoiler"; c: MdNode[] }
  | { t: "code"; v: string }
  | { t: "codeblock"; lang: string; v: string }
  | { t: "quote"; c: MdNode[] }
  | { t: "link"; href: string; c: MdNode[] }
  | { t: "mention"; kind: "user" | "role" | "channel"; id: string }
  | { t: "everyone"; v: "@everyone" | "@here" };

/** Longest input parsed; longer content (never sent by a conforming node) is cut, not rejected. */
const MAX_INPUT = 4000;
/** Nesting depth after which delimiters are taken literally, so hostile input cannot blow the stack. */
const MAX_DEPTH = 12;

/** parse turns message content into block-level nodes (quotes and code blocks) with inline nodes inside. */
export function parse(src: string): MdNode[] {
  if (src.length > MAX_INPUT) src = src.slice(0, MAX_INPUT);
  const out: MdNode[] = [];
  let i = 0;
  let para = "";
  const flush = () => {
    if (para !== "") {
      pushInline(out, para.replace(/\n$/, ""));
      para = "";
    }
  };
  while (i < src.length) {
    const atLineStart = i === 0 || src[i - 1] === "\n";
    if (src.startsWith("```", i)) {
      const end = src.indexOf("```", i + 3);
      if (end > i + 3) {
        flush();
        let body = src.slice(i + 3, end);
        let lang = "";
        const nl = body.indexOf("\n");
        if (nl > 0 && /^[A-Za-z0-9_+#.-]{1,20}$/.test(body.slice(0, nl).trim())) {
          lang = body.slice(0, nl).trim().toLowerCase();
          body = body.slice(nl + 1);
        } else if (nl >= 0 && body.slice(0, nl).trim() === "") {
          body = body.slice(nl + 1);
        }
        out.push({ t: "codeblock", lang, v: body.replace(/\n$/, "") });
        i = end + 3;
        if (src[i] === "\n") i++;
        continue;
      }
    }
    if (atLineStart && src.startsWith(">>> ", i)) {
      flush();
      out.push({ t: "quote", c: parse(src.slice(i + 4)) });
      return out;
    }
    if (atLineStart && src.startsWith("> ", i)) {
      flush();
      // Consecutive "> " lines form one quote.
      const lines: string[] = [];
      while (i < src.length && src.startsWith("> ", i)) {
        const nl = src.indexOf("\n", i);
        const stop = nl < 0 ? src.length : nl;
        lines.push(src.slice(i + 2, stop));
        i = nl < 0 ? src.length : nl + 1;
      }
      const inner: MdNode[] = [];
      pushInline(inner, lines.join("\n"));
      out.push({ t: "quote", c: inner });
      continue;
    }
    para += src[i];
    i++;
  }
  flush();
  return out;
}

function pushInline(out: MdNode[], s: string) {
  for (const n of inline(s, 0)) out.push(n);
}

const simpleDelims: Array<[string, "bold" | "underline" | "strike" | "spoiler" | "italic"]> = [
  ["**", "bold"],
  ["__", "underline"],
  ["~~", "strike"],
  ["||", "spoiler"],
  ["*", "italic"],
  ["_", "italic"],
];

const URL_RE = /^https?:\/\/[^\s<]+[^\s<.,:;"')\]!?]/;
const MENTION_RE = /^<(@!?|@&|#)(\d{1,20})>/;
const MASKED_RE = /^\[([^\]\n]{1,200})\]\((https?:\/\/[^\s)]+)\)/;

/** inline parses emphasis, code spans, spoilers, links and mentions. */
export function inline(s: string, depth: number): MdNode[] {
  const out: MdNode[] = [];
  let text = "";
  const pushText = () => {
    if (text === "") return;
    const parts = text.split("\n");
    parts.forEach((p, k) => {
      if (k > 0) out.push({ t: "br" });
      if (p !== "") out.push({ t: "text", v: p });
    });
    text = "";
  };
  let i = 0;
  outer: while (i < s.length) {
    const ch = s[i];
    const rest = s.slice(i);
    if (ch === "\\" && i + 1 < s.length && /[\\`*_~|<>#@\[\]()-]/.test(s[i + 1])) {
      text += s[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      const fence = s.startsWith("``", i) ? "``" : "`";
      const end = s.indexOf(fence, i + fence.length);
      if (end > i + fence.length) {
        pushText();
        out.push({ t: "code", v: s.slice(i + fence.length, end) });
        i = end + fence.length;
        continue;
      }
    }
    if (ch === "<") {
      const m = MENTION_RE.exec(rest);
      if (m) {
        pushText();
        out.push({ t: "mention", kind: m[1] === "#" ? "channel" : m[1] === "@&" ? "role" : "user", id: m[2] });
        i += m[0].length;
        continue;
      }
      const u = /^<(https?:\/\/[^\s>]+)>/.exec(rest);
      if (u) {
        pushText();
        out.push({ t: "link", href: u[1], c: [{ t: "text", v: u[1] }] });
        i += u[0].length;
        continue;
      }
    }
    if (ch === "@" && (rest.startsWith("@everyone") || rest.startsWith("@here"))) {
      pushText();
      const v = rest.startsWith("@everyone") ? "@everyone" : "@here";
      out.push({ t: "everyone", v });
      i += v.length;
      continue;
    }
    if (ch === "h" && (rest.startsWith("http://") || rest.startsWith("https://")) && (i === 0 || !/[A-Za-z0-9]/.test(s[i - 1]))) {
      const m = URL_RE.exec(rest);
      if (m) {
        pushText();
        out.push({ t: "link", href: m[0], c: [{ t: "text", v: m[0] }] });
        i += m[0].length;
        continue;
      }
    }
    if (ch === "[" && depth < MAX_DEPTH) {
      const m = MASKED_RE.exec(rest);
      if (m) {
        pushText();
        out.push({ t: "link", href: m[2], c: inline(m[1], depth + 1) });
        i += m[0].length;
        continue;
      }
    }
    if (depth < MAX_DEPTH) {
      for (const [d, kind] of simpleDelims) {
        if (!s.startsWith(d, i)) continue;
        // "_" only opens emphasis at a word boundary, as in Discord (snake_case stays literal).
        if (d === "_" && i > 0 && /[A-Za-z0-9]/.test(s[i - 1])) continue;
        const close = findClose(s, d, i + d.length);
        if (close < 0) continue;
        if (d === "_" && close + 1 < s.length && /[A-Za-z0-9]/.test(s[close + 1])) continue;
        pushText();
        out.push({ t: kind, c: inline(s.slice(i + d.length, close), depth + 1) });
        i = close + d.length;
        continue outer;
      }
    }
    text += ch;
    i++;
  }
  pushText();
  return out;
}

/** findClose finds the closing delimiter d at or after from, skipping escapes and code spans; -1 if none. */
function findClose(s: string, d: string, from: number): number {
  if (from >= s.length) return -1;
  // Emphasis content must not start with whitespace (so "a * b * c" stays literal).
  if (d.length === 1 && /\s/.test(s[from])) return -1;
  for (let j = from; j < s.length; j++) {
    const c = s[j];
    if (c === "\\") {
      j++;
      continue;
    }
    if (c === "`") {
      const e = s.indexOf("`", j + 1);
      if (e > 0) {
        j = e;
        continue;
      }
    }
    if (s.startsWith(d, j) && j > from) {
      // A single "*" must not be the first half of "**" that closes an outer bold.
      if (d === "*" && s[j + 1] === "*") {
        const inner = findClose(s, "**", j + 2);
        if (inner > 0) {
          j = inner + 1;
          continue;
        }
      }
      if (d.length === 1 && /\s/.test(s[j - 1])) continue;
      // In a run like "***", the closing "**" is the last two, so "***x***" is bold italic.
      if (d.length === 2) while (s[j + 2] === d[0]) j++;
      return j;
    }
  }
  return -1;
}

/** safeHref returns href when it is an absolute http(s) URL, else null; the renderer drops other links. */
export function safeHref(href: string): string | null {
  try {
    const u = new URL(href);
    if (u.protocol === "http:" || u.protocol === "https:") return u.href;
  } catch {
    // not a URL
  }
  return null;
}

/** plainText flattens nodes to text, for notifications, live-region announcements and reply previews. */
export function plainText(nodes: MdNode[], names?: (kind: string, id: string) => string): string {
  let s = "";
  for (const n of nodes) {
    switch (n.t) {
      case "text":
      case "code":
        s += n.v;
        break;
      case "codeblock":
        s += n.v;
        break;
      case "br":
        s += " ";
        break;
      case "everyone":
        s += n.v;
        break;
      case "mention":
        s += names ? names(n.kind, n.id) : n.kind === "channel" ? "#channel" : "@user";
        break;
      case "spoiler":
        s += "spoiler";
        break;
      default:
        s += plainText(n.c, names);
    }
  }
  return s;
}
