// Camera video in voice (spec/voice.md §3.4, §3.8) through the web client, with Chromium's fake
// camera: alice and bob join a voice channel, turn their cameras on and each receives the other's
// video (frames decode in the tile); a tile asks for the high layer when enlarged; a camera
// turned off stops showing video on the other side and comes back when turned on again.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { unnamedControls } from "../lib/a11y.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser, createGuild, inviteLink, joinGuild } from "../lib/client.mjs";

let node, b;

before(async () => {
  node = await startNode("camera");
  b = await launch();
});

after(async () => {
  await b?.close();
  await node?.stop();
});

/** tile finds the camera tile captioned name. */
const tile = (page, name) => page.locator("section[aria-label=Cameras] figure.tile", { has: page.locator("figcaption", { hasText: new RegExp("^" + name) }) });

/** framesOf reads how many frames a tile's video has painted. */
const framesOf = (t) => t.locator("video").evaluate((v) => Number(v.dataset.frames ?? 0));

async function joinVoice(page) {
  await page.getByRole("button", { name: /^General, voice channel/ }).click();
  await page.locator(".voice-panel [role=status]", { hasText: "Voice connected" }).waitFor({ timeout: 2 * T });
}

test("camera: two users see each other's camera in a voice channel", async () => {
  const alice = await newUser(b.browser, node.url, "alice");
  await createGuild(alice.page, "Camera Club");
  const link = await inviteLink(alice.page);
  const bob = await newUser(b.browser, node.url, "bob");
  await joinGuild(bob.page, link);
  await bob.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
  await joinVoice(alice.page);
  await joinVoice(bob.page);
  await alice.page.waitForFunction(() => document.querySelectorAll(".voice-users li").length === 2, null, { timeout: T });

  // Alice turns her camera on: her self view plays, bob receives her video.
  await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
  await alice.page.getByRole("button", { name: "Camera", exact: true, pressed: true }).waitFor({ timeout: T });
  await tile(alice.page, "You").and(alice.page.locator(".live")).waitFor({ timeout: T });
  const hers = tile(bob.page, "alice");
  await hers.and(bob.page.locator(".live")).waitFor({ timeout: 2 * T });
  await bob.page.waitForFunction(() => [...document.querySelectorAll("figure.tile video")].some((v) => v.videoWidth > 0), null, { timeout: T });
  // The voice channel shows who has a camera on (self_video in the voice state).
  await bob.page.locator(".voice-users li", { hasText: "alice" }).getByText(", camera on").waitFor({ state: "attached", timeout: T });

  // Bob turns his on too: each sees the other.
  await bob.page.getByRole("button", { name: "Camera", exact: true }).click();
  await tile(alice.page, "bob").and(alice.page.locator(".live")).waitFor({ timeout: 2 * T });
  await tile(bob.page, "You").and(bob.page.locator(".live")).waitFor({ timeout: T });

  await shot(bob.page, "34-camera-tiles");
  // Enlarging alice's tile asks the SFU for her high layer; the video keeps playing.
  const low = await hers.locator("video").evaluate((v) => `${v.videoWidth}×${v.videoHeight}`);
  await bob.page.getByRole("button", { name: "Show alice's camera large" }).click();
  await hers.and(bob.page.locator(".focused")).waitFor({ timeout: T });
  const f0 = await framesOf(hers);
  await bob.page.waitForFunction(
    ([f0]) => Number(document.querySelector("figure.tile.focused video")?.dataset.frames ?? 0) > f0 + 10,
    [f0],
    { timeout: T },
  );
  await shot(bob.page, "35-camera-focused");
  const high = await hers.locator("video").evaluate((v) => `${v.videoWidth}×${v.videoHeight}`);
  console.log(`camera: alice's video at bob ${low} at the default layer, ${high} after asking for the high layer`);
  assert.deepEqual(await unnamedControls(bob.page), [], "controls without an accessible name");

  // Alice turns her camera off: her self view goes, and bob's tile stops showing video.
  await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
  await tile(alice.page, "You").waitFor({ state: "detached", timeout: T });
  await hers.getByText(", camera off").waitFor({ state: "attached", timeout: T });
  // And on again: the same m-line carries the new track, no renegotiation needed.
  await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
  await hers.and(bob.page.locator(".live")).waitFor({ timeout: 2 * T });

  await bob.page.getByRole("button", { name: "Disconnect from voice" }).click();
  await bob.page.locator("section[aria-label=Cameras]").waitFor({ state: "detached", timeout: T });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
