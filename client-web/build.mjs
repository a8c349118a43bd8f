// build bundles src/ into dist/ with esbuild: one hashed JS file, one hashed CSS file, index.html.
// `node build.mjs --check` rebuilds into a temporary folder and fails if dist/ differs from it,
// which is how the test command catches a committed build that is stale against the sources.
// `node build.mjs --entry FILE --out DIR` builds another entry (the test fixtures) the same way.
import * as esbuild from "esbuild";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

/** build writes a complete build of entry into outDir and returns the file names and gzipped JS size. */
export async function build(outDir, entry = join(root, "src/main.tsx")) {
  outDir = resolve(outDir);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, "assets"), { recursive: true });
  const res = await esbuild.build({
    entryPoints: { app: entry },
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022", "chrome110", "firefox115", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    write: false,
    outdir: join(outDir, "assets"),
    entryNames: "[name]-[hash]",
    legalComments: "none",
    charset: "utf8",
    logLevel: "warning",
  });
  const names = {};
  for (const f of res.outputFiles) {
    writeFileSync(f.path, f.contents);
    const rel = f.path.slice(outDir.length + 1);
    if (rel.endsWith(".js")) names.js = rel;
    if (rel.endsWith(".css")) names.css = rel;
  }
  const html = readFileSync(join(root, "src/index.html"), "utf8").replace("%JS%", names.js).replace("%CSS%", names.css ?? "");
  writeFileSync(join(outDir, "index.html"), html);
  const js = readFileSync(join(outDir, names.js));
  const css = names.css ? readFileSync(join(outDir, names.css)) : Buffer.alloc(0);
  return { ...names, jsBytes: js.length, jsGzip: gzipSync(js, { level: 9 }).length, cssGzip: gzipSync(css, { level: 9 }).length };
}

function listFiles(dir, base = dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, base));
    else out.push(p.slice(base.length + 1));
  }
  return out.sort();
}

function digest(dir) {
  const h = createHash("sha256");
  for (const f of listFiles(dir)) h.update(f + "\0").update(readFileSync(join(dir, f)));
  return h.digest("hex");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (args.includes("--check")) {
    const tmp = mkdtempSync(join(tmpdir(), "hearth-dist-"));
    await build(tmp);
    const fresh = digest(tmp);
    const committed = digest(join(root, "dist"));
    const a = listFiles(tmp).join(", ");
    rmSync(tmp, { recursive: true, force: true });
    if (fresh !== committed) {
      console.error(`client-web: dist/ is stale against src/ (fresh build has ${a}; committed dist/ has ${listFiles(join(root, "dist")).join(", ")}). Run: npm run build, and commit dist/.`);
      process.exit(1);
    }
    console.log("client-web: dist/ is up to date");
  } else {
    const out = arg("--out") ?? join(root, "dist");
    const entry = arg("--entry");
    const r = await build(out, entry ? join(process.cwd(), entry) : undefined);
    console.log(`client-web: built ${r.js} (${r.jsBytes} bytes, ${r.jsGzip} gzipped) and ${r.css} (${r.cssGzip} gzipped)`);
  }
}
