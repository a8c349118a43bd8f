// The message list is virtualised: 100,000 messages scroll with a bounded DOM and the page stays
// under 150 MB. Runs the real MessageList over synthetic data (test/fixtures/bench.tsx).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "../../build.mjs";
import { launch, serveStatic, openPage, pssMB } from "../lib/browser.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", ".build", "bench");
let b, srv;

before(async () => {
  await build(out, join(here, "..", "fixtures", "bench.tsx"));
  srv = await serveStatic(out);
  b = await launch();
});
after(async () => {
  await b?.close();
  await srv?.close();
});

test("100,000 messages: bounded DOM, smooth scroll, under 150 MB", async () => {
  const { page, pids } = await openPage(b.browser, srv.url + "/?n=100000");
  assert.ok(pids.length > 0, "the page has its own renderer process");
  await page.waitForFunction(() => window.__benchReady && document.querySelectorAll(".msg").length > 0);
  // Pinned at the bottom: the newest message is visible.
  await page.waitForSelector("text=#99999");
  const frames = await page.evaluate(async () => {
    const el = document.querySelector(".scroller");
    const times = [];
    let last = performance.now();
    let maxNodes = 0;
    // Scroll up through a long stretch of history, a screen per frame, then jump around.
    for (let i = 0; i < 240; i++) {
      el.scrollTop -= i < 200 ? 700 : -50000;
      await new Promise((r) => requestAnimationFrame(r));
      const now = performance.now();
      times.push(now - last);
      last = now;
      maxNodes = Math.max(maxNodes, document.querySelectorAll(".msg").length);
    }
    el.scrollTop = 0;
    for (let i = 0; i < 5; i++) await new Promise((r) => requestAnimationFrame(r));
    const firstShown = !!document.querySelector('[data-id] .content')?.textContent?.includes("#0");
    times.sort((a, b) => a - b);
    return { p50: times[times.length >> 1], p95: times[Math.floor(times.length * 0.95)], maxNodes, firstShown, dom: document.getElementsByTagName("*").length };
  });
  const mb = await pssMB(page, pids);
  const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize / 1048576);
  console.log(`virtual list: 100000 messages, frame p50 ${frames.p50.toFixed(1)} ms p95 ${frames.p95.toFixed(1)} ms, max ${frames.maxNodes} message nodes, ${frames.dom} DOM elements, renderer PSS ${mb.toFixed(0)} MB, JS heap ${heap.toFixed(0)} MB`);
  assert.ok(frames.maxNodes < 200, `DOM holds ${frames.maxNodes} messages; virtualisation is off`);
  assert.ok(frames.firstShown, "scrolling to the top shows the first message");
  assert.ok(mb > 0 && mb < 150, `renderer uses ${mb.toFixed(0)} MB`);
  await page.close();
});
