// Two users chat on one real node through the web client in headless Chromium: register, create a
// guild, invite, join, markdown, mentions with autocomplete, replies, edits, deletes, reactions,
// pins, typing, presence, unread and mention badges, XSS payloads, history scroll-back, resume
// after a dropped connection, keyboard navigation, themes, phone width. Screenshots go to
// docs/screenshots/, and the measured timings are printed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../lib/browser.mjs";
import { unnamedControls, lowContrast } from "../lib/a11y.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser as open, createGuild, inviteLink, joinGuild, msg, send } from "../lib/client.mjs";

const newUser = (name) => open(b.browser, node.url, name, { beforeSubmit: name === "alice" ? (p) => shot(p, "01-register") : undefined });

const here = dirname(fileURLToPath(import.meta.url));
let node, b, alice, bob;

before(async () => {
  node = await startNode("chat", ["--rate-messages", "1000", "--rate-global", "1000"]);
  b = await launch();
});

after(async () => {
  await b?.close();
  await node?.stop();
});

test("two users chat on one node", async (t) => {
  await t.test("register, create a server, invite, join", async () => {
    alice = await newUser("alice");
    await createGuild(alice.page, "Hearth Club", (p) => shot(p, "02-create-server"));
    const link = await inviteLink(alice.page, (p) => shot(p, "03-invite"));
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/invite\/[A-Za-z0-9%:_-]{8,}$/);

    bob = await newUser("bob");
    await joinGuild(bob.page, link, (p) => p.getByText("You are invited to Hearth Club").waitFor({ timeout: T }));
    await bob.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
    // Presence: each sees the other online in the member list.
    await alice.page.locator('.member[data-user="bob"].online').waitFor({ timeout: T });
    await bob.page.locator('.member[data-user="alice"].online').waitFor({ timeout: T });
  });

  await t.test("markdown renders on the other side", async () => {
    const md = [
      "**bold** *italic* __under__ ~~strike~~ ||secret|| `inline` https://example.com/docs",
      "> a quote",
      "```go",
      "func main() { return 42 }",
      "```",
    ].join("\n");
    await send(alice.page, md);
    const m = msg(bob.page, "bold");
    await m.waitFor({ timeout: T });
    assert.equal(await m.locator("strong").first().textContent(), "bold");
    assert.equal(await m.locator("em").first().textContent(), "italic");
    assert.equal(await m.locator("u").first().textContent(), "under");
    assert.equal(await m.locator("s").first().textContent(), "strike");
    assert.equal(await m.locator("code.inline").textContent(), "inline");
    assert.equal(await m.locator("blockquote").textContent(), "a quote");
    assert.equal(await m.locator("a").getAttribute("href"), "https://example.com/docs");
    assert.equal(await m.locator("a").getAttribute("rel"), "noopener noreferrer nofollow ugc");
    assert.equal(await m.locator("pre .tk-kw").first().textContent(), "func");
    assert.equal(await m.locator("pre .tk-num").first().textContent(), "42");
    const spoiler = m.getByRole("button", { name: "Spoiler, press to reveal" });
    await spoiler.press("Enter");
    await m.locator(".spoiler.open").waitFor();
  });

  await t.test("typing indicator, mention autocomplete, reply, reactions", async () => {
    await bob.page.locator("#composer-input").pressSequentially("hey @al", { delay: 20 });
    await alice.page.getByText("bob is typing…").waitFor({ timeout: T });
    await shot(alice.page, "04-typing");
    await bob.page.getByRole("option", { name: /alice/ }).waitFor();
    // Frames come late on a busy machine: the caret placed after the completion must not
    // jump back into what bob types meanwhile (it did, and "look at this" went out garbled).
    await bob.page.evaluate(() => {
      const raf = window.requestAnimationFrame.bind(window);
      window.__raf = raf;
      window.requestAnimationFrame = (f) => setTimeout(() => raf(f), 60);
    });
    await bob.page.locator("#composer-input").press("Tab");
    assert.equal(await bob.page.locator("#composer-input").inputValue(), "hey @alice ");
    await bob.page.locator("#composer-input").pressSequentially("look at this", { delay: 25 });
    await bob.page.evaluate(() => (window.requestAnimationFrame = window.__raf));
    assert.equal(await bob.page.locator("#composer-input").inputValue(), "hey @alice look at this");
    await bob.page.locator("#composer-input").press("Enter");
    const mention = msg(alice.page, "look at this");
    await mention.waitFor({ timeout: T });
    assert.equal(await mention.locator(".mention.me").textContent(), "@alice");
    assert.ok((await mention.getAttribute("class")).includes("mentioned"));
    // The typing line clears once the message arrives.
    await alice.page.waitForFunction(() => !document.querySelector(".typing")?.textContent, null, { timeout: T });

    // Alice replies through the message toolbar.
    await mention.hover();
    await mention.getByRole("button", { name: "Reply" }).click();
    await alice.page.getByText("Replying to bob").waitFor();
    await send(alice.page, "replying to you");
    const reply = msg(bob.page, "replying to you");
    await reply.waitFor({ timeout: T });
    assert.match(await reply.locator(".reply-preview").textContent(), /bob.*look at this/s);

    // Bob reacts with the emoji picker, keyboard only.
    const target = msg(bob.page, "bold");
    await target.hover();
    await target.getByRole("button", { name: "Add reaction" }).click();
    await bob.page.getByLabel("Search emoji").fill("thumbsup");
    await shot(bob.page, "05-emoji-picker");
    await bob.page.getByLabel("Search emoji").press("Enter");
    const r = msg(alice.page, "bold").locator(".reaction");
    await r.waitFor({ timeout: T });
    assert.match(await r.textContent(), /👍\s*1/);
    // Alice adds hers by clicking the pill: the count goes to 2 on Bob's side.
    await r.click();
    await bob.page.waitForFunction(() => /2/.test(document.querySelector(".reaction")?.textContent ?? ""), null, { timeout: T });
  });

  await t.test("edits and deletes show on the other side", async () => {
    await send(alice.page, "this has a tpyo");
    await msg(bob.page, "tpyo").waitFor({ timeout: T });
    await msg(alice.page, "tpyo").waitFor({ timeout: T });
    // Up in the empty composer edits the last own message.
    await alice.page.locator("#composer-input").press("ArrowUp");
    const edit = alice.page.getByRole("textbox", { name: "Edit message" });
    await edit.fill("this has no typo");
    await edit.press("Enter");
    const edited = msg(bob.page, "this has no typo");
    await edited.waitFor({ timeout: T });
    assert.match(await edited.textContent(), /\(edited\)/);

    await send(alice.page, "delete me soon");
    const doomed = msg(alice.page, "delete me soon");
    await msg(bob.page, "delete me soon").waitFor({ timeout: T });
    await doomed.hover();
    await doomed.getByRole("button", { name: "Delete message" }).click();
    await alice.page.getByRole("dialog", { name: "Delete message" }).getByRole("button", { name: "Delete" }).click();
    await msg(bob.page, "delete me soon").waitFor({ state: "detached", timeout: T });
  });

  await t.test("pins", async () => {
    const m = msg(alice.page, "this has no typo");
    await m.hover();
    await m.getByRole("button", { name: "Pin message" }).click();
    await alice.page.getByRole("button", { name: "Pinned messages" }).click();
    await alice.page.getByRole("dialog", { name: "Pinned messages" }).getByText("this has no typo").waitFor({ timeout: T });
    await shot(alice.page, "06-pins");
    await alice.page.keyboard.press("Escape");
  });

  await t.test("channels, categories, unread and mention badges", async () => {
    // Alice creates a text channel in the "Text Channels" category and moves there.
    await alice.page.getByRole("button", { name: "Create channel in Text Channels" }).click();
    await alice.page.getByLabel("Channel name").fill("random");
    await alice.page.getByRole("button", { name: "Create channel", exact: true }).click();
    await alice.page.locator(".chat-head h2", { hasText: "random" }).waitFor({ timeout: T });
    await bob.page.getByRole("button", { name: /^random/ }).waitFor({ timeout: T });
    // Bob writes in #general and mentions Alice: #general shows unread and a mention badge for her.
    await send(bob.page, "unread for alice");
    await alice.page.getByRole("button", { name: "general, unread" }).waitFor({ timeout: T });
    await send(bob.page, "@alice ping");
    await alice.page.getByRole("button", { name: "general, 1 mention" }).waitFor({ timeout: T });
    await alice.page.getByRole("button", { name: "Hearth Club, 1 mention" }).waitFor({ timeout: T });
    await shot(alice.page, "07-unread-mention-badges");
    await alice.page.getByRole("button", { name: "general, 1 mention" }).click();
    await alice.page.getByRole("button", { name: "general", exact: true }).waitFor({ timeout: T });
  });

  await t.test("roles: create a hoisted, coloured role; the member list groups by it", async () => {
    const p = alice.page;
    await p.getByRole("button", { name: "Create role" }).click();
    const dlg = p.getByRole("dialog", { name: "Roles" });
    await dlg.getByLabel("Role name").fill("Moderators");
    await dlg.getByLabel("Colour").fill("#e67e22");
    await dlg.getByRole("checkbox", { name: "Manage messages" }).check();
    await dlg.getByRole("checkbox", { name: "bob" }).check();
    await shot(p, "20-create-role");
    await dlg.getByRole("button", { name: "Create role" }).click();
    await dlg.waitFor({ state: "detached", timeout: T });
    for (const page of [p, bob.page]) {
      const group = page.getByRole("region", { name: /^Moderators, 1/ });
      await group.locator('.member[data-user="bob"]').waitFor({ timeout: T });
      // The role colour, adjusted for contrast on the theme (never the default text colour).
      const c = await group.locator(".member-name").evaluate((e) => getComputedStyle(e).color);
      assert.match(c, /^rgb\(\d+, \d+, \d+\)$/);
      const [r, g, b] = c.match(/\d+/g).map(Number);
      assert.ok(r > g && g > b, `${c} is still orange`);
    }
    // Bob now holds MANAGE_MESSAGES: the pin action appears on others' messages for him.
    const m = msg(bob.page, "replying to you");
    await m.hover();
    await m.getByRole("button", { name: /Pin message|Unpin message/ }).waitFor({ timeout: T });
  });

  await t.test("keyboard: Ctrl+K quick switcher, Alt+Up/Down, Esc", async () => {
    const p = alice.page;
    await p.locator("#composer-input").focus();
    await p.keyboard.press("Control+k");
    const q = p.getByRole("combobox", { name: "Where would you like to go?" });
    await q.waitFor();
    await q.fill("rand");
    await shot(p, "08-quick-switcher");
    await q.press("Enter");
    await p.locator(".chat-head h2", { hasText: "random" }).waitFor();
    await p.keyboard.press("Alt+ArrowUp");
    await p.locator(".chat-head h2", { hasText: "general" }).waitFor();
    await p.keyboard.press("Alt+ArrowDown");
    await p.locator(".chat-head h2", { hasText: "random" }).waitFor();
    await p.keyboard.press("Control+k");
    await q.waitFor();
    await p.keyboard.press("Escape");
    await q.waitFor({ state: "detached" });
    await p.keyboard.press("Alt+ArrowUp");
    await p.locator(".chat-head h2", { hasText: "general" }).waitFor();
    // Reach a message and its toolbar from the keyboard alone, and react with the picker.
    await p.locator(".scroller").focus();
    await p.keyboard.press("ArrowUp");
    const focused = p.locator("article.msg:focus");
    await focused.waitFor();
    const text = await focused.locator(".content").textContent();
    await p.keyboard.press("Tab");
    assert.equal(await p.evaluate(() => document.activeElement.getAttribute("aria-label")), "Add reaction");
    await p.keyboard.press("Enter");
    // The picker focuses its search box in an effect, after a frame: type once it has.
    await p.locator('input[aria-label="Search emoji"]:focus').waitFor();
    await p.keyboard.type("tada");
    await p.keyboard.press("Enter");
    await msg(bob.page, text.trim()).locator(".reaction", { hasText: "🎉" }).waitFor({ timeout: T });
    await p.keyboard.press("Escape");
  });

  await t.test("no HTML in a message ever runs", async () => {
    const payloads = [
      "<script>window.__xss=1</script>",
      "<img src=x onerror=\"window.__xss=2\">",
      "[click me](javascript:window.__xss=3)",
      "<svg onload=window.__xss=4>",
      "<iframe src=\"javascript:window.__xss=5\"></iframe>",
      "``` \n</code></pre><img src=x onerror=window.__xss=6>\n```",
      "||<img src=x onerror=window.__xss=7>||",
      "[x](https://ok.example\" onmouseover=\"window.__xss=8)",
      "<a href=\"javascript:window.__xss=9\">link</a> <style>body{display:none}</style>",
    ];
    for (const p of payloads) await send(bob.page, p);
    await msg(alice.page, "__xss=9").waitFor({ timeout: T });
    // Reveal spoilers and hover everything, as a curious user would.
    for (const s of await alice.page.locator(".spoiler").all()) await s.click().catch(() => {});
    for (const a of await alice.page.locator(".msg a").all()) await a.hover().catch(() => {});
    const bad = await alice.page.evaluate(() => ({
      xss: window.__xss,
      script: document.querySelectorAll(".msg .content :is(script, img, iframe, svg:not(.ic), style, object, embed)").length,
      jsLinks: [...document.querySelectorAll(".msg a")].filter((a) => !/^https?:/.test(a.href)).length,
      onAttrs: [...document.querySelectorAll(".msg *")].filter((e) => [...e.attributes].some((x) => x.name.startsWith("on"))).length,
    }));
    assert.deepEqual(bad, { xss: undefined, script: 0, jsLinks: 0, onAttrs: 0 });
    assert.ok(await msg(alice.page, "<script>window.__xss=1</script>").count() > 0, "payloads are shown as text");
    assert.deepEqual(alice.errors, []);
    await shot(alice.page, "09-xss-as-text");
  });

  await t.test("history scrolls back (infinite scroll)", async () => {
    const owner = (await node.api("POST", "/auth/login", null, { login: "alice", password: "correct horse alice" })).token;
    const poster = (await node.api("POST", "/auth/login", null, { login: "bob", password: "correct horse bob" })).token;
    const cid = await alice.page.evaluate(() => localStorage.getItem("hearth.channel"));
    const ch = await node.api("GET", `/channels/${cid}`, owner);
    const hid = (await node.api("POST", `/guilds/${ch.guild_id}/channels`, owner, { name: "history", type: 0 })).id;
    for (let i = 0; i < 180; i++) await node.api("POST", `/channels/${hid}/messages`, poster, { content: `history message ${i}` });
    const p = alice.page;
    await p.getByRole("button", { name: /^history/ }).click();
    await msg(p, "history message 179").waitFor({ timeout: T });
    // Scroll to the top repeatedly until the first message has loaded.
    await p.waitForFunction(
      () => {
        const el = document.querySelector(".scroller");
        el.scrollTop = 0;
        el.dispatchEvent(new Event("scroll"));
        return [...document.querySelectorAll(".msg .content")].some((c) => c.textContent.trim() === "history message 0");
      },
      null,
      { timeout: 30000, polling: 200 },
    );
    await p.getByText("This is the start of the #history channel.").waitFor();
    await shot(p, "10-history-start");
  });

  await t.test("search box with filter autocomplete jumps to a hit", async (tt) => {
    const p = alice.page;
    const box = p.getByRole("combobox", { name: "Search messages" });
    await box.click();
    await box.pressSequentially("fro");
    await p.getByRole("option", { name: /from:/ }).waitFor();
    await box.press("ArrowDown");
    await box.press("Enter");
    await box.pressSequentially("b");
    await p.getByRole("option", { name: /from:bob/ }).waitFor();
    await shot(p, "11-search-autocomplete");
    await box.press("ArrowDown");
    await box.press("Enter");
    await box.pressSequentially("history message 3");
    await box.press("Enter");
    const status = p.locator(".search-results [role=status]");
    await status.waitFor({ timeout: T });
    if ((await status.textContent()).includes("failed")) {
      tt.skip("the node has no search route yet: " + (await p.locator(".search-results .error").textContent()));
      await p.keyboard.press("Escape");
      return;
    }
    const hit = p.locator(".search-results .result", { hasText: "history message 3" }).first();
    await hit.waitFor({ timeout: T });
    await shot(p, "12-search-results");
    await hit.click();
    await p.locator(".msg.flash", { hasText: "history message 3" }).waitFor({ timeout: T });
    await p.getByRole("button", { name: "Close search results" }).click();
    await p.locator(".members").waitFor();
  });

  await t.test("a dropped connection shows a banner and resumes without losing messages", async () => {
    const p = alice.page;
    await p.getByRole("button", { name: /^general/ }).click();
    await p.evaluate(() => window.__hearthGateway.dropForTest());
    await p.getByRole("alert").filter({ hasText: "Connection lost" }).waitFor({ timeout: T });
    await shot(p, "13-reconnect-banner");
    await send(bob.page, "sent while alice was away");
    await msg(p, "sent while alice was away").waitFor({ timeout: 30000 });
    await p.getByRole("alert").filter({ hasText: "Connection lost" }).waitFor({ state: "detached", timeout: T });
  });

  await t.test("measured: JS size, open to messages, channel switch", async () => {
    const dist = join(here, "..", "..", "dist", "assets");
    const js = readdirSync(dist).filter((f) => f.endsWith(".js"));
    const gz = js.reduce((n, f) => n + gzipSync(readFileSync(join(dist, f)), { level: 9 }).length, 0);
    // A fresh page for a logged-in user: navigation start to the first messages on screen.
    const page = await alice.ctx.newPage();
    await page.goto(node.url);
    await page.waitForFunction(() => window.__hearthPerf?.messagesShown !== undefined, null, { timeout: T });
    const open = await page.evaluate(() => window.__hearthPerf.messagesShown);
    // Channel switches between channels already loaded: click to the next frame painted.
    const times = [];
    for (let i = 0; i < 6; i++) {
      const name = i % 2 ? "general" : "random";
      await page.evaluate(() => delete window.__hearthPerf.lastSwitchMs);
      await page.getByRole("button", { name: new RegExp("^" + name) }).click();
      await page.waitForFunction(() => window.__hearthPerf.lastSwitchMs !== undefined);
      times.push(await page.evaluate(() => window.__hearthPerf.lastSwitchMs));
    }
    times.sort((a, b) => a - b);
    console.log(
      `measured: JS shipped ${(gz / 1024).toFixed(1)} KB gzipped (goal < 150); page open to messages shown ${open.toFixed(0)} ms (goal < 500); ` +
        `channel switch to first paint median ${times[times.length >> 1].toFixed(1)} ms, max ${times[times.length - 1].toFixed(1)} ms (goal < 50)`,
    );
    assert.ok(gz < 150 * 1024, `JS is ${gz} bytes gzipped`);
    await page.close();
  });

  await t.test("light theme, settings and phone width", async () => {
    const p = alice.page;
    await p.getByRole("button", { name: "Settings", exact: true }).click();
    await p.getByRole("radio", { name: "Light" }).check();
    await shot(p, "14-settings-light");
    await p.keyboard.press("Escape");
    await p.getByRole("button", { name: /^general/ }).click();
    await shot(p, "15-chat-light");
    await p.getByRole("button", { name: "Settings", exact: true }).click();
    await p.getByRole("radio", { name: "Dark" }).check();
    await p.keyboard.press("Escape");
    await shot(p, "16-chat-dark");
    const phone = await b.browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await alice.ctx.storageState() });
    const pp = await phone.newPage();
    await pp.goto(node.url);
    await pp.locator(".msg").first().waitFor({ timeout: T }).catch(async (e) => {
      const state = await pp.evaluate(() => ({ channel: localStorage.getItem("hearth.channel"), head: document.querySelector(".chat-head")?.textContent, cls: document.querySelector(".app")?.className }));
      throw new Error(`phone: no messages shown (${JSON.stringify(state)}): ${e.message}`);
    });
    await shot(pp, "17-phone-messages");
    await pp.getByRole("button", { name: "Show channels" }).click();
    await pp.getByRole("button", { name: /^random/ }).waitFor();
    await shot(pp, "18-phone-channels");
    await pp.getByRole("button", { name: /^random/ }).click();
    await pp.locator(".chat-head h2", { hasText: "random" }).waitFor();
    await phone.close();
  });

  await t.test("accessibility: named controls, WCAG AA contrast in both themes", async () => {
    const p = alice.page;
    for (const theme of ["Dark", "Light", "Dark"]) {
      await p.getByRole("button", { name: /^general/ }).click();
      await p.getByRole("button", { name: "Settings", exact: true }).click();
      await p.getByRole("radio", { name: theme }).check();
      assert.deepEqual(await unnamedControls(p), [], `${theme}: settings controls without a name`);
      assert.deepEqual(await lowContrast(p), [], `${theme}: settings text below WCAG AA contrast`);
      await p.keyboard.press("Escape");
      assert.deepEqual(await unnamedControls(p), [], `${theme}: controls without an accessible name`);
      assert.deepEqual(await lowContrast(p), [], `${theme}: text below WCAG AA contrast`);
    }
  });

  await t.test("live presence: status changes show in the member list", async () => {
    await bob.page.getByRole("combobox", { name: "Your status" }).selectOption("dnd");
    await alice.page.locator('.member[data-user="bob"].dnd').waitFor({ timeout: T });
    await bob.page.getByRole("combobox", { name: "Your status" }).selectOption("invisible");
    await alice.page.locator('.member[data-user="bob"].offline').waitFor({ timeout: T });
    await shot(alice.page, "19-presence-offline");
    await bob.page.getByRole("combobox", { name: "Your status" }).selectOption("online");
    await alice.page.locator('.member[data-user="bob"].online').waitFor({ timeout: T });
  });
});
