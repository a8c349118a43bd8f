// Direct messages through the web client (spec/client-api.md, POST /users/@me/channels): bob opens
// a DM from alice's profile in the member list; alice sees the unread count on the rail's Home
// button and in the DM list, reads it, and both use the usual message features (typing, mention,
// reply, reaction, edit) in the DM. A reload keeps the DM open; phone width works. Then a group
// DM of three: created from Home, everyone chats, one leaves.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { unnamedControls, lowContrast } from "../lib/a11y.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser, createGuild, inviteLink, joinGuild, msg, send, setTheme, lateFirstFrame } from "../lib/client.mjs";

let node, b;

before(async () => {
  node = await startNode("dm");
  b = await launch();
});

after(async () => {
  await b?.close();
  await node?.stop();
});

test("direct messages: open from the member list, unread badges, chat both ways", async () => {
  const alice = await newUser(b.browser, node.url, "alice");
  await createGuild(alice.page, "DM Club");
  const link = await inviteLink(alice.page);
  const bob = await newUser(b.browser, node.url, "bob");
  await joinGuild(bob.page, link);
  await bob.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });

  // Bob opens alice's profile from the member list and starts a DM.
  await bob.page.locator(".members").getByRole("button", { name: /^alice, online/ }).click({ timeout: T });
  const profile = bob.page.getByRole("dialog", { name: "alice" });
  await profile.waitFor({ timeout: T });
  await shot(bob.page, "26-profile");
  await profile.getByRole("button", { name: "Message" }).click();
  await bob.page.locator(".chat-head h2", { hasText: "alice" }).waitFor({ timeout: T });
  assert.equal(await bob.page.locator("#composer-input").getAttribute("aria-label"), "Message @alice");
  await bob.page.getByText("This is the beginning of your direct message history with alice.").waitFor({ timeout: T });
  // The rail's Home button is the current view.
  assert.equal(await bob.page.getByRole("button", { name: /^Direct messages/ }).getAttribute("aria-current"), "page");

  // Alice is in #general: the DM shows as an unread count on Home.
  await send(bob.page, "psst, alice");
  await msg(bob.page, "psst, alice").waitFor({ timeout: T });
  const home = alice.page.getByRole("button", { name: "Direct messages, 1 unread" });
  await home.waitFor({ timeout: T });
  assert.equal(await alice.page.locator(".rail-item.unread .badge").first().textContent(), "1");
  await send(bob.page, "are you there?");
  await alice.page.getByRole("button", { name: "Direct messages, 2 unread" }).waitFor({ timeout: T });
  await alice.page.getByRole("button", { name: /^Direct messages/ }).click();
  const entry = alice.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^bob, online, 2 unread/ });
  await entry.waitFor({ timeout: T });
  await shot(alice.page, "27-dm-list-unread");
  await entry.click();
  await msg(alice.page, "psst, alice").waitFor({ timeout: T });
  await msg(alice.page, "are you there?").waitFor({ timeout: T });
  // Reading the DM clears the badges (the read state is acknowledged on the node).
  await alice.page.getByRole("button", { name: "Direct messages", exact: true }).waitFor({ timeout: T });
  await alice.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: "bob, online", exact: true }).waitFor({ timeout: T });

  // Typing, a reply, a reaction and an edit, as in a guild channel.
  await bob.page.locator("#composer-input").pressSequentially("typing in a DM, @al", { delay: 20 });
  await alice.page.getByText("bob is typing…").waitFor({ timeout: T });
  // Mentions autocomplete from the DM's recipients.
  await bob.page.getByRole("option", { name: /alice/ }).waitFor({ timeout: T });
  await bob.page.locator("#composer-input").press("Tab");
  await bob.page.locator("#composer-input").press("Enter");
  await msg(alice.page, "typing in a DM").locator(".mention.me", { hasText: "@alice" }).waitFor({ timeout: T });
  const q = msg(alice.page, "are you there?");
  await alice.page.waitForFunction(() => !document.querySelector(".typing")?.textContent, null, { timeout: T });
  await q.hover();
  await q.getByRole("button", { name: "Reply" }).click();
  await send(alice.page, "**yes**, here in a tpyo");
  const reply = msg(bob.page, "here in a tpyo");
  await reply.waitFor({ timeout: T });
  assert.equal(await reply.locator(".content strong").first().textContent(), "yes");
  assert.match(await reply.locator(".reply-preview").textContent(), /bob.*are you there\?/s);
  await reply.hover();
  await reply.getByRole("button", { name: "Add reaction" }).click();
  await bob.page.getByLabel("Search emoji").fill("thumbsup");
  await bob.page.getByLabel("Search emoji").press("Enter");
  await msg(alice.page, "here in a tpyo").locator(".reaction", { hasText: "1" }).waitFor({ timeout: T });
  await msg(alice.page, "here in a tpyo").waitFor({ timeout: T });
  await alice.page.locator("#composer-input").press("ArrowUp");
  const edit = alice.page.getByRole("textbox", { name: "Edit message" });
  await edit.fill("**yes**, here without a typo");
  await edit.press("Enter");
  const edited = msg(bob.page, "here without a typo");
  await edited.waitFor({ timeout: T });
  assert.match(await edited.textContent(), /\(edited\)/);
  await shot(alice.page, "28-direct-messages");

  // Files go to a DM as to a channel.
  await bob.page.locator("input[type=file]").setInputFiles({ name: "for-alice.txt", mimeType: "text/plain", buffer: Buffer.from("just for you\n") });
  await send(bob.page, "a file for you");
  await msg(alice.page, "a file for you").getByRole("link", { name: /^Download for-alice\.txt/ }).waitFor({ timeout: T });

  // Search within the DM finds a message and jumps to it.
  const box = alice.page.getByRole("combobox", { name: "Search messages" });
  await box.fill("psst");
  await box.press("Enter");
  const hit = alice.page.locator(".search-results .result", { hasText: "psst, alice" });
  await hit.waitFor({ timeout: T });
  assert.match(await hit.textContent(), /^@bob/);
  await hit.click();
  await alice.page.locator(".msg.flash", { hasText: "psst, alice" }).waitFor({ timeout: T });
  await alice.page.getByRole("button", { name: "Close search results" }).click();

  // Every control is named and the text meets WCAG AA in the DM view.
  assert.deepEqual(await unnamedControls(alice.page), [], "controls without an accessible name");
  for (const theme of ["Dark", "Light"]) {
    await setTheme(alice.page, theme);
    assert.deepEqual(await lowContrast(alice.page), [], `${theme}: text below WCAG AA contrast`);
  }

  // A reload reopens the DM, from READY's private_channels. The page's first frame is made late,
  // so READY arrives before the app's components have subscribed to the store (which left the
  // page on "Connecting…" for good, about once in 80 reloads on an idle machine).
  await alice.ctx.addInitScript(lateFirstFrame);
  await alice.page.reload();
  await alice.page.locator(".chat-head h2", { hasText: "bob" }).waitFor({ timeout: 2 * T }).catch(async (e) => {
    const st = await alice.page.evaluate(() => {
      const g = window.__hearthGateway;
      return {
        saved: localStorage.getItem("hearth.channel"),
        head: document.querySelector(".chat-head")?.textContent,
        status: document.querySelector(".splash, .banner")?.textContent,
        gateway: g && { mode: g.mode, ws: g.ws?.readyState ?? null, session: g.sessionId, seq: g.seq, retryAt: g.retryAt },
      };
    });
    throw new Error(`after reload: ${JSON.stringify(st)}, page errors ${JSON.stringify(alice.errors)}: ${e.message}`);
  });
  await msg(alice.page, "psst, alice").waitFor({ timeout: T });
  // The reply still shows what it answers (history pages carry only message_reference).
  assert.match(await msg(alice.page, "here without a typo").locator(".reply-preview").textContent({ timeout: T }), /bob.*are you there\?/s);

  // Phone width: the DM list and the DM take the screen in turn.
  const phone = await b.browser.newContext({ viewport: { width: 390, height: 844 }, storageState: await alice.ctx.storageState() });
  const pp = await phone.newPage();
  await pp.goto(node.url);
  await msg(pp, "psst, alice").waitFor({ timeout: T });
  await pp.getByRole("button", { name: "Show channels" }).click();
  const dmEntry = pp.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^bob/ });
  await dmEntry.waitFor({ timeout: T });
  await shot(pp, "40-phone-dm-list");
  // Back to the same DM: its messages show again (the list was hidden, not unmounted).
  await dmEntry.click();
  await msg(pp, "psst, alice").waitFor({ timeout: T });
  await shot(pp, "41-phone-dm");
  await phone.close();
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});

test("group DMs: create with two people, everyone chats, one leaves", async () => {
  const dora = await newUser(b.browser, node.url, "dora");
  await createGuild(dora.page, "Group Club");
  const link = await inviteLink(dora.page);
  const ed = await newUser(b.browser, node.url, "ed");
  const fay = await newUser(b.browser, node.url, "fay");
  for (const u of [ed, fay]) {
    await joinGuild(u.page, link);
    await u.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
  }
  await dora.page.locator('.member[data-user="fay"]').waitFor({ timeout: T });

  await dora.page.getByRole("button", { name: /^Direct messages/ }).click();
  await dora.page.getByRole("button", { name: "Create a group DM" }).click();
  const dialog = dora.page.getByRole("dialog", { name: "Create a group DM" });
  await dialog.getByRole("checkbox", { name: "ed" }).check();
  await dialog.getByRole("checkbox", { name: "fay" }).check();
  await dialog.getByText("2 of at most 9 picked").waitFor();
  await shot(dora.page, "42-new-group-dm");
  await dialog.getByRole("button", { name: "Create group DM" }).click();
  await dora.page.locator(".chat-head h2", { hasText: "ed, fay" }).waitFor({ timeout: T });
  await send(dora.page, "hello group");

  // Ed sees it unread under Home and answers; fay sees both.
  await ed.page.getByRole("button", { name: "Direct messages, 1 unread" }).click({ timeout: T });
  await ed.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^dora, fay, 1 unread/ }).click({ timeout: T });
  await msg(ed.page, "hello group").waitFor({ timeout: T });
  await send(ed.page, "hi both");
  await fay.page.getByRole("button", { name: /^Direct messages/ }).click();
  await fay.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^dora, ed/ }).click({ timeout: T });
  await msg(fay.page, "hello group").waitFor({ timeout: T });
  await msg(fay.page, "hi both").waitFor({ timeout: T });
  await fay.page.getByRole("button", { name: "Direct messages", exact: true }).waitFor({ timeout: T });
  await shot(fay.page, "43-group-dm");

  // Fay leaves: the group goes from her list, and the others see two people left.
  await fay.page.getByRole("button", { name: "Leave group" }).click();
  await fay.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^dora, ed/ }).waitFor({ state: "detached", timeout: T });
  await dora.page.locator(".chat-head h2", { hasText: /^ed$/ }).waitFor({ timeout: T });
  assert.deepEqual([...dora.errors, ...ed.errors, ...fay.errors], []);
});

// notifyStubs lets the test put the page in the background (document.hasFocus answers
// window.__focused) and records every desktop notification the page creates (the browser's own
// Notification, wrapped) in window.__notes.
const notifyStubs = (ctx) =>
  ctx.addInitScript(() => {
    window.__focused = true;
    Document.prototype.hasFocus = function () {
      return window.__focused;
    };
    window.__notes = [];
    const Real = window.Notification;
    window.Notification = new Proxy(Real, {
      construct(target, args) {
        const n = new target(...args);
        window.__notes.push({ title: args[0], body: args[1]?.body, n });
        return n;
      },
      get(target, k) {
        const v = target[k];
        return typeof v === "function" ? v.bind(target) : v;
      },
    });
  });

// mentionGus sends "<text> @gus" with the mention completed from the autocomplete.
async function mentionGus(page, text) {
  const box = page.locator("#composer-input");
  await box.pressSequentially(text + " @gu", { delay: 20 });
  await page.getByRole("option", { name: /gus/ }).waitFor({ timeout: T });
  await box.press("Tab");
  await box.press("Enter");
}

test("notifications: the title counts mentions, a mention in the background is a desktop notification", async () => {
  // No permission overrides for gus, so that the browser has not answered yet ("default"); the
  // usual context grants microphone and camera, which denies everything else, as hana's shows.
  const gus = await newUser(b.browser, node.url, "gus", { init: notifyStubs, contextOptions: { permissions: undefined } });
  await createGuild(gus.page, "Ping Club");
  const link = await inviteLink(gus.page);
  const hana = await newUser(b.browser, node.url, "hana");
  await joinGuild(hana.page, link);
  await hana.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
  assert.equal(await gus.page.title(), "Hearth");
  await hana.page.getByRole("button", { name: "Settings", exact: true }).click();
  await hana.page.getByText("Desktop notifications are blocked in this browser's settings for this site.").waitFor({ timeout: T });
  await hana.page.keyboard.press("Escape");

  // Desktop notifications are asked for from Settings: the browser answers only a click.
  await gus.page.getByRole("button", { name: "Settings", exact: true }).click();
  const settings = gus.page.getByRole("dialog", { name: "Settings" });
  const enable = settings.getByRole("button", { name: "Enable desktop notifications" });
  await enable.waitFor({ timeout: T });
  await gus.ctx.grantPermissions(["notifications"], { origin: node.url });
  await enable.click();
  const toggle = settings.getByRole("checkbox", { name: /^Desktop notifications for mentions and direct messages/ });
  await toggle.waitFor({ timeout: T });
  assert.equal(await toggle.isChecked(), true);
  await settings.getByRole("heading", { name: "Notifications" }).scrollIntoViewIfNeeded();
  await shot(gus.page, "54-notification-settings");
  await gus.page.keyboard.press("Escape");
  await settings.waitFor({ state: "detached", timeout: T });

  // Gus looks at his direct messages, then leaves the window: hana mentions him in #general.
  await gus.page.getByRole("button", { name: /^Direct messages/ }).click();
  await gus.page.evaluate(() => (window.__focused = false));
  // A message that does not mention him first: it counts in neither the title nor notifications
  // (the mention after it arrives after it, so the checks below see it too).
  await send(hana.page, "just chatting");
  await mentionGus(hana.page, "ping");
  await gus.page.waitForFunction(() => window.__notes.length === 1, null, { timeout: T });
  const note = await gus.page.evaluate(() => ({ title: window.__notes[0].title, body: window.__notes[0].body }));
  assert.deepEqual(note, { title: "hana (#general, Ping Club)", body: "ping @gus" });
  await gus.page.waitForFunction(() => document.title === "(1) Hearth", null, { timeout: T });

  // Clicking the notification opens the channel; back in the window, it is read.
  await gus.page.evaluate(() => {
    window.__focused = true;
    window.__notes[0].n.onclick();
  });
  await msg(gus.page, "ping").waitFor({ timeout: T });
  await gus.page.locator(".chat-head h2", { hasText: "general" }).waitFor({ timeout: T });
  await gus.page.waitForFunction(() => document.title === "Hearth", null, { timeout: T });
  await shot(gus.page, "55-notification-read");

  // With notifications switched off in Settings, a mention in the background shows none.
  await gus.page.getByRole("button", { name: "Settings", exact: true }).click();
  await toggle.uncheck();
  await gus.page.keyboard.press("Escape");
  await gus.page.evaluate(() => (window.__focused = false));
  await mentionGus(hana.page, "again");
  await gus.page.waitForFunction(() => document.title === "(1) Hearth", null, { timeout: T });
  assert.equal(await gus.page.evaluate(() => window.__notes.length), 1);
  assert.deepEqual([...gus.errors, ...hana.errors], []);
});
