// Two nodes: alice on node A creates a guild and an invite; bob, registered on node B, pastes the
// link into node B's client and joins over federation; then they chat both ways, see each other's
// presence, an image alice sends shows on node B (which fetches it from node A), so does the
// avatar alice then sets, bob opens a DM with alice across the nodes, and one by name (carol@alpha) with a user of node A he shares no server with. Both nodes run federation (--p2p-listen on loopback).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser, createGuild, inviteLink, joinGuild, msg, send, pngOf } from "../lib/client.mjs";

let a, bnode, br;

before(async () => {
  const p2p = (name) => ["--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--node-name", name];
  a = await startNode("fed-a", p2p("alpha"));
  bnode = await startNode("fed-b", p2p("beta"));
  br = await launch();
});

after(async () => {
  await br?.close();
  await a?.stop();
  await bnode?.stop();
});

test("two nodes: join by pasting a link from another node, chat both ways", async () => {
  const alice = await newUser(br.browser, a.url, "alice");
  await createGuild(alice.page, "Across Nodes");
  const link = await inviteLink(alice.page);
  const bob = await newUser(br.browser, bnode.url, "bob");
  await joinGuild(bob.page, link, (p) => shot(p, "24-join-remote-invite"));
  const joined = bob.page.getByRole("button", { name: /^general/ });
  try {
    await joined.waitFor({ timeout: 15000 });
  } catch {
    const err = await bob.page.locator(".modal .error").textContent().catch(() => "");
    assert.fail(`node B could not join through the pasted link (${err || "no GUILD_CREATE"})`);
  }
  await send(alice.page, "hello from node A");
  await msg(bob.page, "hello from node A").waitFor({ timeout: T });
  await send(bob.page, "hello back from node B");
  await msg(alice.page, "hello back from node B").waitFor({ timeout: T });
  // Remote users carry their node in their name.
  await alice.page.locator(".member", { hasText: /bob@/ }).waitFor({ timeout: T });
  await shot(bob.page, "25-federated-chat");
  // Presence crosses nodes: each sees the other online. A node republishes its users' full
  // presence every 10 s (federation PresenceRefresh), and a node that joined after the other's
  // users came online learns of them from that refresh, so allow for one period and more.
  await alice.page.locator(".member.online", { hasText: /bob@/ }).waitFor({ timeout: 3 * T });
  await bob.page.locator(".member.online", { hasText: /alice@/ }).waitFor({ timeout: 3 * T });
  await shot(alice.page, "36-federated-presence");

  // An image attachment crosses: node B fetches the bytes from node A on first download
  // (spec/media.md §6), renders its thumbnail, and serves the original.
  const png = await pngOf(alice.page, 900, 600, "node A");
  await alice.page.locator("input[type=file]").setInputFiles({ name: "across.png", mimeType: "image/png", buffer: png });
  await send(alice.page, "a picture from node A");
  const pic = msg(bob.page, "a picture from node A");
  await pic.waitFor({ timeout: T });
  const img = pic.locator(".att-image img");
  await img.waitFor({ timeout: T });
  await bob.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle(), { timeout: 2 * T });
  await pic.getByRole("button", { name: "Open image across.png, 900×600" }).click();
  const full = bob.page.getByRole("dialog", { name: "across.png" }).locator("img.full-image");
  await bob.page.waitForFunction((el) => el.complete && el.naturalWidth === 900, await full.elementHandle(), { timeout: 2 * T });
  await shot(bob.page, "37-federated-attachment");
  await bob.page.keyboard.press("Escape");

  // A remote member's avatar: alice sets one on node A; node B learns of it from federation
  // (GUILD_MEMBER_UPDATE with the user), fetches the bytes from node A, and serves them.
  await alice.page.getByRole("button", { name: "Settings", exact: true }).click();
  const settings = alice.page.getByRole("dialog", { name: "Settings", exact: true });
  await settings.getByLabel("avatar image file").setInputFiles({ name: "alice.png", mimeType: "image/png", buffer: await pngOf(alice.page, 256, 256, "A") });
  await settings.getByRole("button", { name: "Remove avatar" }).waitFor({ timeout: T });
  await alice.page.keyboard.press("Escape");
  const remoteAvatar = bob.page.locator(".members").getByRole("button", { name: /^alice@/ }).locator(".avatar img");
  await remoteAvatar.waitFor({ timeout: 2 * T });
  await bob.page.waitForFunction((el) => el.complete && el.naturalWidth === 256, await remoteAvatar.elementHandle(), { timeout: 2 * T });
  assert.match(await remoteAvatar.getAttribute("src"), /^\/avatars\/\d+\/[0-9a-f]{64}\.png$/);
  // Her earlier message on node B shows it too (the list follows the member update).
  await msg(bob.page, "a picture from node A").locator('.msg-head .avatar[data-avatar="image"]').waitFor({ timeout: T });
  await shot(bob.page, "47-federated-avatar");

  // A DM across nodes: bob opens it from alice's profile; alice sees it under Home, unread.
  await bob.page.locator(".members").getByRole("button", { name: /^alice@/ }).click();
  await bob.page.getByRole("dialog").getByRole("button", { name: "Message" }).click();
  await bob.page.locator(".chat-head h2", { hasText: "alice@" }).waitFor({ timeout: T });
  await send(bob.page, "a private word across nodes");
  await msg(bob.page, "a private word across nodes").waitFor({ timeout: T });
  await alice.page.getByRole("button", { name: /^Direct messages, \d+ unread/ }).click({ timeout: 2 * T });
  await alice.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^bob@/ }).click({ timeout: T });
  await msg(alice.page, "a private word across nodes").waitFor({ timeout: T });
  await send(alice.page, "and one back");
  await msg(bob.page, "and one back").waitFor({ timeout: T });
  await shot(alice.page, "38-federated-dm");

  // A DM by name with someone on the other node who shares no server with bob (CAPI-033):
  // carol is on node A and in no guild; bob types carol@alpha.
  const carol = await newUser(br.browser, a.url, "carol");
  await bob.page.getByRole("button", { name: /^Direct messages/ }).click();
  const byName = async (name) => {
    await bob.page.getByRole("button", { name: "Message someone by username" }).click();
    const dlg = bob.page.getByRole("dialog", { name: "Message someone" });
    await dlg.getByLabel("Username").fill(name);
    await dlg.getByRole("button", { name: "Message", exact: true }).click();
    return dlg;
  };
  // Nobody of that name on node A: the dialog says so and stays open.
  const dlg = await byName("nobody@alpha");
  await dlg.getByRole("alert").waitFor({ timeout: T });
  assert.match(await dlg.getByRole("alert").textContent(), /unknown user/i);
  await shot(bob.page, "52-dm-by-name-unknown");
  await bob.page.keyboard.press("Escape");
  await byName("carol@alpha");
  await bob.page.locator(".chat-head h2", { hasText: "carol@" }).waitFor({ timeout: T });
  await send(bob.page, "hello carol, we share no server");
  await carol.page.getByRole("button", { name: /^Direct messages, \d+ unread/ }).click({ timeout: 2 * T });
  await carol.page.getByRole("list", { name: "Direct messages" }).getByRole("button", { name: /^bob@/ }).click({ timeout: T });
  await msg(carol.page, "hello carol, we share no server").waitFor({ timeout: T });
  await send(carol.page, "hi bob");
  await msg(bob.page, "hi bob").waitFor({ timeout: T });
  await shot(bob.page, "53-dm-by-name");
  assert.deepEqual([...alice.errors, ...bob.errors, ...carol.errors], []);
});
