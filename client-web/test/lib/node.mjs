// node builds the hearth binary from this repository and starts real nodes for the e2e tests,
// each with its own data directory and loopback port; stop() ends exactly the processes it started.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const buildDir = join(repo, "client-web", "test", ".build");
let binary = "";

/** hearthBinary builds ./node/cmd/hearth once per test process (the Go build cache makes reruns cheap). */
export function hearthBinary() {
  if (binary) return binary;
  if (process.env.HEARTH_BINARY) return (binary = process.env.HEARTH_BINARY);
  mkdirSync(buildDir, { recursive: true });
  const out = join(buildDir, "hearth");
  execFileSync("go", ["build", "-o", out, "./node/cmd/hearth"], { cwd: repo, stdio: "inherit" });
  return (binary = out);
}

async function freePort() {
  const s = createServer();
  await new Promise((r) => s.listen(0, "127.0.0.1", r));
  const p = s.address().port;
  await new Promise((r) => s.close(r));
  return p;
}

/** startNode runs `hearth serve` and resolves once /healthz answers; extra are more flags. */
export async function startNode(name = "node", extra = []) {
  const bin = hearthBinary();
  const dir = mkdtempSync(join(tmpdir(), `hearth-e2e-${name}-`));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const log = openSync(join(dir, "node.log"), "w");
  const proc = spawn(bin, ["serve", "--data-dir", join(dir, "data"), "--listen", `127.0.0.1:${port}`, ...extra], {
    stdio: ["ignore", log, log],
  });
  let exited = false;
  proc.on("exit", () => (exited = true));
  const deadline = Date.now() + 20000;
  for (;;) {
    if (exited) throw new Error(`${name} exited at start; log in ${dir}/node.log`);
    try {
      const r = await fetch(url + "/healthz");
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} did not become healthy; log in ${dir}/node.log`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    dir,
    proc,
    /** api calls the node's REST API with an optional token. */
    async api(method, path, token, body) {
      const r = await fetch(url + "/api/v10" + path, {
        method,
        headers: { ...(token ? { Authorization: token } : {}), ...(body ? { "Content-Type": "application/json" } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await r.text();
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
      return text ? JSON.parse(text) : null;
    },
    async stop() {
      if (!exited) {
        proc.kill("SIGTERM");
        await new Promise((r) => {
          const t = setTimeout(() => (proc.kill("SIGKILL"), r()), 5000);
          proc.on("exit", () => (clearTimeout(t), r()));
        });
      }
      if (!process.env.HEARTH_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
}
