// highlight splits code into classed tokens for code blocks. It is a small lexer, not a parser:
// comments, strings, numbers and a keyword list per language family. Output is plain strings
// with a token kind, so the renderer never builds HTML from code either.

/** A token kind; "" is plain text. */
export type TokKind = "" | "kw" | "str" | "num" | "com" | "lit";

/** One highlighted piece of a code block. */
export interface Tok {
  k: TokKind;
  v: string;
}

interface Lang {
  kw: Set<string>;
  line: string[]; // line-comment openers
  block: boolean; // C-style /* */ comments
}

const words = (s: string) => new Set(s.split(" "));
const C_LIKE = "if else for while do return break continue switch case default new class struct const static void public private protected try catch finally throw import export from";
const LANGS: Record<string, Lang> = {
  js: { kw: words(C_LIKE + " function var let async await typeof instanceof of in this yield extends super delete"), line: ["//"], block: true },
  ts: { kw: words(C_LIKE + " function var let async await typeof instanceof of in this yield extends super interface type enum implements readonly as keyof"), line: ["//"], block: true },
  go: { kw: words("break case chan const continue default defer else fallthrough for func go goto if import interface map package range return select struct switch type var"), line: ["//"], block: true },
  rust: { kw: words("as async await break const continue crate else enum extern fn for if impl in let loop match mod move mut pub ref return self Self static struct super trait type unsafe use where while dyn"), line: ["//"], block: true },
  c: { kw: words(C_LIKE + " int char long short unsigned signed float double sizeof typedef enum union extern goto auto register volatile inline include define"), line: ["//"], block: true },
  java: { kw: words(C_LIKE + " extends implements interface abstract final boolean int long double float char byte package this super instanceof synchronized"), line: ["//"], block: true },
  py: { kw: words("and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield"), line: ["#"], block: false },
  sh: { kw: words("if then else elif fi for while do done case esac function in return export local set"), line: ["#"], block: false },
  json: { kw: new Set(), line: [], block: false },
  css: { kw: new Set(), line: [], block: true },
  sql: { kw: words("select from where insert into values update set delete create table drop alter index join left right inner outer on group by order having limit and or not null as distinct union"), line: ["--"], block: true },
};
const ALIASES: Record<string, string> = {
  javascript: "js", jsx: "js", mjs: "js", typescript: "ts", tsx: "ts", golang: "go", rs: "rust",
  cpp: "c", "c++": "c", h: "c", cs: "java", csharp: "java", kotlin: "java", kt: "java",
  python: "py", bash: "sh", shell: "sh", zsh: "sh", console: "sh", scss: "css",
};
const LITERALS = words("true false null nil None True False undefined");

/** langOf maps a code-block language tag to a known lexer, or null when it has none. */
export function langOf(tag: string): string | null {
  const t = tag.toLowerCase();
  const k = ALIASES[t] ?? t;
  return k in LANGS ? k : null;
}

/** highlight tokenises code; an unknown language yields a single plain token. */
export function highlight(code: string, tag: string): Tok[] {
  const name = langOf(tag);
  if (!name) return [{ k: "", v: code }];
  const lang = LANGS[name];
  const out: Tok[] = [];
  const push = (k: TokKind, v: string) => {
    const last = out[out.length - 1];
    if (last && last.k === k) last.v += v;
    else out.push({ k, v });
  };
  let i = 0;
  const n = code.length;
  while (i < n) {
    const c = code[i];
    const lc = lang.line.find((p) => code.startsWith(p, i));
    if (lc) {
      let e = code.indexOf("\n", i);
      if (e < 0) e = n;
      push("com", code.slice(i, e));
      i = e;
      continue;
    }
    if (lang.block && code.startsWith("/*", i)) {
      let e = code.indexOf("*/", i + 2);
      e = e < 0 ? n : e + 2;
      push("com", code.slice(i, e));
      i = e;
      continue;
    }
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < n && code[j] !== c) {
        if (code[j] === "\\") j++;
        else if (code[j] === "\n" && c !== "`") break;
        j++;
      }
      j = Math.min(j + 1, n);
      push("str", code.slice(i, j));
      i = j;
      continue;
    }
    if (/[0-9]/.test(c) && (i === 0 || !/[A-Za-z_]/.test(code[i - 1]))) {
      const m = /^(0x[0-9a-fA-F_]+|[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?)/.exec(code.slice(i, i + 64));
      const v = m ? m[0] : c;
      push("num", v);
      i += v.length;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(code[j])) j++;
      const w = code.slice(i, j);
      push(lang.kw.has(w) ? "kw" : LITERALS.has(w) ? "lit" : "", w);
      i = j;
      continue;
    }
    push("", c);
    i++;
  }
  return out;
}
