// client holds the steps the e2e tests repeat: open the client as a new user, create a guild,
// make an invite, join with it, send a message, and take a screenshot.
import { mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const shots = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "docs", "screenshots");
mkdirSync(shots, { recursive: true });

/** T is the default wait for something a peer did to show up. */
export const T = 15000;

export async function shot(page, name) {
  await page.screenshot({ path: join(shots, name + ".png") });
}

/** newUser opens url in a fresh browser context (init, if given, prepares the context first;
 * contextOptions are more options for it) and registers name through the UI. It collects
 * page errors and JavaScript dialogs (which no test expects) in errors. */
export async function newUser(browser, url, name, { viewport = { width: 1280, height: 800 }, beforeSubmit, init, contextOptions } = {}) {
  const ctx = await browser.newContext({ viewport, permissions: ["microphone", "camera"], ...contextOptions });
  if (init) await init(ctx);
  const page = await ctx.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => {
    errors.push("dialog: " + d.message());
    void d.dismiss();
  });
  await page.goto(url);
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByLabel("Username").fill(name);
  await page.getByLabel("Password").fill("correct horse " + name);
  if (beforeSubmit) await beforeSubmit(page);
  await page.getByRole("button", { name: "Register" }).click();
  await page.locator(".user-panel").waitFor({ timeout: T });
  return { ctx, page, errors, name };
}

/** createGuild creates a guild through the UI and waits for its #general. */
export async function createGuild(page, name, beforeSubmit) {
  await page.getByRole("button", { name: "Create a server" }).click();
  await page.getByLabel("Server name").fill(name);
  if (beforeSubmit) await beforeSubmit(page);
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
}

/** inviteLink opens the invite dialog and returns the link it shows. */
export async function inviteLink(page, beforeClose) {
  await page.getByRole("button", { name: "Invite people" }).click();
  await page.waitForFunction(() => document.querySelector("#invite-link")?.value.includes("/invite/"), null, { timeout: T });
  const link = await page.locator("#invite-link").inputValue();
  if (beforeClose) await beforeClose(page);
  await page.keyboard.press("Escape");
  return link;
}

/** join pastes an invite link into the join dialog. */
export async function joinGuild(page, link, beforeSubmit) {
  await page.getByRole("button", { name: "Join a server with an invite" }).click();
  await page.getByLabel("Invite link or code").fill(link);
  if (beforeSubmit) await beforeSubmit(page);
  await page.getByRole("button", { name: "Join", exact: true }).click();
}

/** msg finds the rendered message whose text contains s. */
export const msg = (page, s) => page.locator(".msg", { hasText: s });

export async function send(page, text) {
  const box = page.locator("#composer-input");
  await box.fill(text);
  await box.press("Enter");
}

/** pngOf draws a w×h gradient with a label on a canvas in the page and returns the PNG bytes. */
export async function pngOf(page, w, h, label) {
  const b64 = await page.evaluate(
    async ([w, h, label]) => {
      const c = document.createElement("canvas");
      c.width = w;
      c.height = h;
      const g = c.getContext("2d");
      const grad = g.createLinearGradient(0, 0, w, h);
      grad.addColorStop(0, "#f5a623");
      grad.addColorStop(1, "#4752c4");
      g.fillStyle = grad;
      g.fillRect(0, 0, w, h);
      g.fillStyle = "#fff";
      g.font = `bold ${Math.round(h / 6)}px sans-serif`;
      g.fillText(label, w / 10, h / 2);
      const blob = await new Promise((r) => c.toBlob(r, "image/png"));
      const url = await new Promise((r) => {
        const fr = new FileReader();
        fr.onload = () => r(fr.result);
        fr.readAsDataURL(blob);
      });
      return url.slice(url.indexOf(",") + 1);
    },
    [w, h, label],
  );
  return Buffer.from(b64, "base64");
}

/** setTheme picks "Dark" or "Light" in the settings dialog and closes it. */
export async function setTheme(page, theme) {
  await page.getByRole("button", { name: "Settings", exact: true }).click();
  await page.getByRole("radio", { name: theme }).check();
  await page.keyboard.press("Escape");
}

/** lateFirstFrame is an init script (context.addInitScript) for a page whose first frame comes
 * late, as in a background tab or on a busy machine: for the first second after the page loads,
 * requestAnimationFrame callbacks and timers shorter than 100 ms run 500 ms late. Preact runs
 * effects (where components subscribe to the store) after a frame, so the gateway's READY then
 * reliably arrives before the app has subscribed to anything. */
export function lateFirstFrame() {
  const t0 = performance.now();
  const early = () => performance.now() - t0 < 1000;
  const setT = window.setTimeout;
  const raf = window.requestAnimationFrame;
  window.setTimeout = (fn, ms = 0, ...args) => setT(fn, early() && ms < 100 ? ms + 500 : ms, ...args);
  window.requestAnimationFrame = (fn) => (early() ? setT(() => raf(fn), 500) : raf(fn));
}
