// load bundles a TypeScript module of src/ with esbuild and imports it, so unit tests run under
// plain `node --test` without a TypeScript loader. Browser globals the modules touch at import
// time (localStorage, matchMedia, window) get minimal stand-ins.
import * as esbuild from "esbuild";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

globalThis.localStorage ??= { getItem: () => null, setItem() {}, removeItem() {} };
globalThis.sessionStorage ??= globalThis.localStorage;
globalThis.window ??= globalThis;
globalThis.matchMedia ??= () => ({ matches: false });
globalThis.addEventListener ??= () => {};

/** load returns the exports of src/<rel> (e.g. "markdown.ts"). */
export async function load(rel) {
  const r = await esbuild.build({
    entryPoints: [join(root, "src", rel)],
    bundle: true,
    format: "esm",
    platform: "neutral",
    jsx: "automatic",
    jsxImportSource: "preact",
    write: false,
    logLevel: "error",
  });
  const dir = mkdtempSync(join(tmpdir(), "hearth-unit-"));
  const file = join(dir, rel.replace(/[\/.]/g, "_") + ".mjs");
  writeFileSync(file, r.outputFiles[0].contents);
  return import(pathToFileURL(file).href);
}
