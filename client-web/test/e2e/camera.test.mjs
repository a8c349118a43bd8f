// Camera video in voice (spec/voice.md §3.4, §3.8) through the web client, with Chromium's fake
// camera: alice and bob join a voice channel, turn their cameras on and each receives the other's
// video (frames decode in the tile); a tile asks for the high layer when enlarged; a camera
// turned off is unpublished (its tile goes on the other side) and plays again when turned on
// again; a screen share stopped and shared again plays again for the member watching it.
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

/** framesDecoded sums the video frames the page's voice connection has decoded (inbound-rtp). */
async function framesDecoded(page) {
  return page.evaluate(async () => {
    let n = 0;
    (await window.__hearthVoicePC.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "video") n += r.framesDecoded ?? 0;
    });
    return n;
  });
}

/** moving waits until a video has a current frame (readyState >= 2) and has painted 10 more
 * frames than when first seen: name's camera tile, or with name "" the watched screen share. */
async function moving(page, name) {
  const what = name ? `${name}'s camera` : "the screen share";
  await page
    .waitForFunction(
      (name) => {
        const v = name
          ? [...document.querySelectorAll("figure.tile")].find((f) => f.querySelector("figcaption")?.textContent.startsWith(name))?.querySelector("video")
          : document.querySelector("video.screen-video");
        if (!v || v.readyState < 2) return false;
        v.__f0 ??= Number(v.dataset.frames ?? 0);
        return Number(v.dataset.frames ?? 0) >= v.__f0 + 10;
      },
      name,
      { timeout: 2 * T },
    )
    .catch(async (e) => {
      // What the page has: its videos, its voice connection's m-lines and received video.
      const seen = await page.evaluate(async () => {
        const out = [...document.querySelectorAll("video")].map((v) => {
          const t = v.srcObject?.getTracks()[0];
          return `${v.getAttribute("aria-label")}: readyState ${v.readyState}, frames ${v.dataset.frames}, track ${t?.readyState}${t?.muted ? " muted" : ""}`;
        });
        const pc = window.__hearthVoicePC;
        for (const t of pc.getTransceivers()) out.push(`mid ${t.mid} ${t.currentDirection}`);
        (await pc.getStats()).forEach((r) => {
          if (r.type === "inbound-rtp" && r.kind === "video") out.push(`inbound mid ${r.mid} ssrc ${r.ssrc}: ${r.framesDecoded} frames decoded`);
        });
        return out;
      });
      throw new Error(`${what} does not play (${seen.join("; ")}): ${e.message}`);
    });
}

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

  // Alice turns her camera off (spec/voice.md 3.4.1): her self view goes, the SFU unpublishes the
  // camera, so bob's tile for her goes and the voice channel no longer shows her camera on.
  const aliceInList = bob.page.locator(".voice-users li", { hasText: "alice" });
  for (let round = 1; round <= 2; round++) {
    await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
    await alice.page.getByRole("button", { name: "Camera", exact: true, pressed: false }).waitFor({ timeout: T });
    await tile(alice.page, "You").waitFor({ state: "detached", timeout: T });
    await hers.waitFor({ state: "detached", timeout: T });
    await aliceInList.getByText(", camera on").waitFor({ state: "detached", timeout: T });
    if (round === 1) await shot(bob.page, "48-camera-off");
    // And on again, on the same m-line: bob sees her moving picture again.
    const decoded = await framesDecoded(bob.page);
    await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
    await aliceInList.getByText(", camera on").waitFor({ state: "attached", timeout: T });
    await moving(bob.page, "alice");
    assert.ok((await framesDecoded(bob.page)) > decoded, "bob decodes no new frames of alice's camera");
  }
  await shot(bob.page, "49-camera-on-again");

  // A screen share stopped and started again: bob watches, the share ends (unpublished: no
  // LIVE badge, no picture), and the next share plays for him again.
  const watchBtn = bob.page.getByRole("button", { name: /^Watch alice.s screen/ });
  const live = aliceInList.getByLabel("sharing screen");
  await alice.page.getByRole("button", { name: "Share your screen" }).click();
  await watchBtn.click({ timeout: T });
  await moving(bob.page, "");
  for (let round = 1; round <= 2; round++) {
    await alice.page.getByRole("button", { name: "Share your screen", pressed: true }).click();
    await live.waitFor({ state: "detached", timeout: T });
    await bob.page.locator("video.screen-video").waitFor({ state: "detached", timeout: T });
    await bob.page.getByRole("status").filter({ hasText: "alice’s share has ended." }).waitFor({ timeout: T });
    if (round === 1) await shot(bob.page, "50-share-ended");
    await alice.page.getByRole("button", { name: "Share your screen", pressed: false }).click();
    await live.waitFor({ timeout: T });
    await moving(bob.page, "");
  }
  await shot(bob.page, "51-share-again");
  await alice.page.getByRole("button", { name: "Share your screen", pressed: true }).click();
  await live.waitFor({ state: "detached", timeout: T });

  await bob.page.getByRole("button", { name: "Disconnect from voice" }).click();
  await bob.page.locator("section[aria-label=Cameras]").waitFor({ state: "detached", timeout: T });
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
