// browser launches Debian's Chromium through playwright-core with fake media devices and a fresh
// profile, and serves static folders for fixture pages. Everything stays on 127.0.0.1.
import { chromium } from "playwright-core";
import { readFileSync, existsSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { join, extname, normalize } from "node:path";

const CHROMIUM = process.env.HEARTH_CHROMIUM || "/usr/bin/chromium";

/** launch starts a headless Chromium. playwright-core gives every launch a fresh temporary
 * --user-data-dir of its own (and refuses one in args), and removes it on close. audioFile, if
 * given, is a WAV file the fake microphone plays (looped) instead of its beeps. */
export async function launch({ audioFile } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--auto-select-desktop-capture-source=Entire screen",
      "--enable-usermedia-screen-capturing",
      ...(audioFile ? ["--use-file-for-fake-audio-capture=" + audioFile] : []),
    ],
  });
  return {
    browser,
    async close() {
      await browser.close().catch(() => {});
    },
  };
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css" };

/** serveStatic serves dir on a free loopback port; unknown paths get index.html. */
export async function serveStatic(dir) {
  const srv = createServer((req, res) => {
    let p = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
    let f = join(dir, p);
    if (!existsSync(f) || statSync(f).isDirectory()) f = join(dir, "index.html");
    res.writeHead(200, { "Content-Type": TYPES[extname(f)] ?? "application/octet-stream" });
    res.end(readFileSync(f));
  });
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${srv.address().port}`, close: () => new Promise((r) => srv.close(r)) };
}

/** rendererPids lists the browser's renderer process IDs, leaving out the browser's own UI
 * renderer (--top-chrome-webui), which headless Chromium starts per window. */
export async function rendererPids(browser) {
  const cdp = await browser.newBrowserCDPSession();
  const info = await cdp.send("SystemInfo.getProcessInfo");
  await cdp.detach();
  return info.processInfo
    .filter((p) => p.type === "renderer")
    .map((p) => p.id)
    .filter((pid) => {
      try {
        return !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--top-chrome-webui");
      } catch {
        return false;
      }
    });
}

/** pssMB is the proportional set size, in MB and after a GC in the page, of the largest of the
 * given renderer processes: the page's own. (Chromium also keeps an idle spare renderer of about
 * 20 MB ready for the next navigation; it holds nothing of the page.) */
export async function pssMB(page, pids) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.detach();
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
      if (m) kb = Math.max(kb, Number(m[1]));
    } catch {
      // the process ended
    }
  }
  return kb / 1024;
}

/** openPage opens a page and returns it with the renderer processes that appeared for it. */
export async function openPage(browser, url, opts = {}) {
  const before = new Set(await rendererPids(browser));
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, ...opts });
  await page.goto(url);
  const pids = (await rendererPids(browser)).filter((p) => !before.has(p));
  return { page, pids };
}
