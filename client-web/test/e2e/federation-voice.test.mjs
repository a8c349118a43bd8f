// Voice across two nodes through the web client (spec/voice.md §5, the cascade): alice on node A
// and bob on node B join the same voice channel of alice's guild; each client speaks WebRTC to its
// own node's SFU and the SFUs relay to each other. Each hears the other (inbound audio bytes
// grow, the speaking ring lights) and sees the other's camera.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { startNode } from "../lib/node.mjs";
import { T, shot, newUser, createGuild, inviteLink, joinGuild } from "../lib/client.mjs";

let a, bnode, br;

before(async () => {
  const p2p = (name) => ["--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--node-name", name];
  a = await startNode("fedvoice-a", p2p("alpha"));
  bnode = await startNode("fedvoice-b", p2p("beta"));
  br = await launch();
});

after(async () => {
  await br?.close();
  await a?.stop();
  await bnode?.stop();
});

/** inboundAudioBytes sums bytesReceived of the page's inbound audio RTP streams. */
const inboundAudioBytes = (page) =>
  page.evaluate(async () => {
    const pc = window.__hearthVoicePC;
    if (!pc) return 0;
    let n = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") n += s.bytesReceived;
    });
    return n;
  });

test("voice across nodes: hear and see each other through the SFU cascade", async () => {
  const alice = await newUser(br.browser, a.url, "alice");
  await createGuild(alice.page, "Voice Across");
  const link = await inviteLink(alice.page);
  const bob = await newUser(br.browser, bnode.url, "bob");
  await joinGuild(bob.page, link);
  await bob.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: 2 * T });
  const voiceChannel = (p) => p.getByRole("button", { name: /^General, voice channel/ });
  await voiceChannel(bob.page).waitFor({ timeout: 2 * T });

  await voiceChannel(alice.page).click();
  await alice.page.locator(".voice-panel [role=status]", { hasText: "Voice connected" }).waitFor({ timeout: 2 * T });
  await voiceChannel(bob.page).click();
  await bob.page.locator(".voice-panel [role=status]", { hasText: "Voice connected" }).waitFor({ timeout: 2 * T });
  // Each node lists both members in the channel (remote members through the cascade).
  await alice.page.waitForFunction(() => document.querySelectorAll(".voice-users li").length === 2, null, { timeout: 3 * T });
  await bob.page.waitForFunction(() => document.querySelectorAll(".voice-users li").length === 2, null, { timeout: 3 * T });

  // Audio crosses both ways: the speaking ring lights for the member on the other node.
  await alice.page.locator(".voice-users li.speaking", { hasText: "bob@" }).waitFor({ timeout: 3 * T });
  await bob.page.locator(".voice-users li.speaking", { hasText: "alice@" }).waitFor({ timeout: 3 * T });
  for (const p of [alice.page, bob.page]) {
    const b0 = await inboundAudioBytes(p);
    await p.waitForFunction(async (b0) => {
      const pc = window.__hearthVoicePC;
      let n = 0;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") n += s.bytesReceived;
      });
      return n > b0 + 2000;
    }, b0, { timeout: 2 * T, polling: 250 });
  }

  // Camera crosses too.
  await alice.page.getByRole("button", { name: "Camera", exact: true }).click();
  const tile = bob.page.locator("section[aria-label=Cameras] figure.tile.live", { has: bob.page.locator("figcaption", { hasText: /^alice@/ }) });
  await tile.waitFor({ timeout: 3 * T });
  await shot(bob.page, "39-federated-voice-camera");
  assert.deepEqual([...alice.errors, ...bob.errors], []);
});
