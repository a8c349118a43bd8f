// Avatars, display names and guild icons through the web client (spec/media.md §7,
// spec/client-api.md PATCH /users/@me and PATCH /guilds/{id}): alice uploads an avatar in
// Settings (shrunk in the browser to 256 px, sent as a data URI), sets a display name, and gives
// her guild an icon in Server settings; bob, on the same node, sees all three in the rail, the
// member list and the message list; removing the avatar brings the initial back.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { unnamedControls } from "../lib/a11y.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser, createGuild, inviteLink, joinGuild, msg, send, pngOf } from "../lib/client.mjs";

let node, b;

before(async () => {
  node = await startNode("profile");
  b = await launch();
});

after(async () => {
  await b?.close();
  await node?.stop();
});

/** loadedImg waits until the locator's <img> has decoded and returns its natural size. */
async function loadedImg(loc) {
  await loc.waitFor({ timeout: T });
  const h = await loc.elementHandle();
  await loc.page().waitForFunction((img) => img.complete && img.naturalWidth > 0, h, { timeout: T });
  return h.evaluate((img) => ({ w: img.naturalWidth, h: img.naturalHeight, src: img.getAttribute("src") }));
}

test("avatar, display name and guild icon: set by one user, seen by another", async () => {
  const alice = await newUser(b.browser, node.url, "alice");
  await createGuild(alice.page, "Picture Club");

  // Avatar: a 600×400 PNG is shrunk to fit 256 px (not cropped) before it is sent.
  await alice.page.getByRole("button", { name: "Settings", exact: true }).click();
  const settings = alice.page.getByRole("dialog", { name: "Settings", exact: true });
  await settings.waitFor({ timeout: T });
  const png = await pngOf(alice.page, 600, 400, "alice");
  await settings.getByLabel("avatar image file").setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png });
  await settings.getByRole("button", { name: "Remove avatar" }).waitFor({ timeout: T });
  const panel = await loadedImg(alice.page.locator(".user-panel .avatar img"));
  assert.match(panel.src, /^\/avatars\/\d+\/[0-9a-f]{64}\.png$/);
  assert.deepEqual([panel.w, panel.h], [256, 171], "the avatar is shrunk to 256 px on its longest side");
  // Served without authorisation (MEDIA-093), as an image.
  const res = await fetch(node.url + panel.src);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^image\//);

  // Display name.
  await settings.getByLabel("Display name").fill("Alice Liddell");
  await settings.getByRole("button", { name: "Save display name" }).click();
  await settings.getByRole("status").filter({ hasText: "Saved" }).waitFor({ timeout: T });
  await alice.page.locator(".user-panel .me-name", { hasText: "Alice Liddell" }).waitFor({ timeout: T });
  await alice.page.locator(".members").getByRole("button", { name: /^Alice Liddell, online/ }).waitFor({ timeout: T });
  assert.deepEqual(await unnamedControls(alice.page), []);
  await shot(alice.page, "44-profile-settings");
  await alice.page.keyboard.press("Escape");

  // Guild icon, from the server settings (MANAGE_GUILD).
  await alice.page.getByRole("button", { name: "Server settings" }).click();
  const gs = alice.page.getByRole("dialog", { name: "Server settings" });
  await gs.waitFor({ timeout: T });
  const icon = await pngOf(alice.page, 300, 300, "PC");
  await gs.getByLabel("icon image file").setInputFiles({ name: "icon.png", mimeType: "image/png", buffer: icon });
  await gs.getByRole("button", { name: "Remove icon" }).waitFor({ timeout: T });
  const railIcon = await loadedImg(alice.page.locator(".guild-icon img").first());
  assert.match(railIcon.src, /^\/icons\/\d+\/[0-9a-f]{64}\.png$/);
  assert.deepEqual(await unnamedControls(alice.page), []);
  await shot(alice.page, "45-server-settings-icon");
  await alice.page.keyboard.press("Escape");

  // Bob joins: the rail shows the icon, the member list alice's avatar and display name.
  const link = await inviteLink(alice.page);
  const bob = await newUser(b.browser, node.url, "bob");
  await joinGuild(bob.page, link);
  await bob.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
  const bobIcon = await loadedImg(bob.page.getByRole("button", { name: /^Picture Club/ }).locator("img"));
  assert.equal(bobIcon.src, railIcon.src);
  const member = bob.page.locator(".members").getByRole("button", { name: /^Alice Liddell, online/ });
  const mAvatar = await loadedImg(member.locator(".avatar img"));
  assert.equal(mAvatar.src, panel.src);

  // Her messages show the avatar and the display name.
  await send(alice.page, "new look, same alice");
  const m = msg(bob.page, "new look, same alice");
  await m.waitFor({ timeout: T });
  assert.equal(await m.locator(".author").textContent(), "Alice Liddell");
  assert.equal((await loadedImg(m.locator(".msg-head .avatar img"))).src, panel.src);
  // Bob has no avatar: his own panel and his message show his initial.
  await send(bob.page, "hi Alice");
  const mb = msg(alice.page, "hi Alice");
  await mb.waitFor({ timeout: T });
  assert.equal(await mb.locator(".msg-head .avatar").getAttribute("data-avatar"), "initial");
  assert.equal((await mb.locator(".msg-head .avatar").textContent()).trim(), "B");
  await shot(bob.page, "46-avatars-and-icon");

  // Removing the avatar brings alice's initial back; the old URL is no longer served.
  await alice.page.getByRole("button", { name: "Settings", exact: true }).click();
  await settings.getByRole("button", { name: "Remove avatar" }).click();
  await settings.getByRole("button", { name: "Upload avatar" }).waitFor({ timeout: T });
  await alice.page.locator('.user-panel .avatar[data-avatar="initial"]', { hasText: "A" }).waitFor({ timeout: T });
  assert.equal((await fetch(node.url + panel.src)).status, 404);
  await alice.page.keyboard.press("Escape");

  // A file that is not an image is refused in the browser, with a message.
  await alice.page.getByRole("button", { name: "Settings", exact: true }).click();
  await settings.getByLabel("avatar image file").setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("hello") });
  await settings.getByRole("alert").filter({ hasText: "not a PNG, JPEG, GIF or WebP" }).waitFor({ timeout: T });
  await alice.page.keyboard.press("Escape");

  for (const u of [alice, bob]) assert.deepEqual(u.errors, [], `${u.name}'s page errors`);
});
