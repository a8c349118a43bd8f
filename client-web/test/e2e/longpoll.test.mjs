// A client that cannot hold a WebSocket falls back to HTTP long-polling of the same dispatch
// stream (spec/client-api.md §3.5): it still sees messages, typing and edits live, sends through
// the poll session, and resumes after a dropped poll without losing messages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { launch } from "../lib/browser.mjs";
import { startNode } from "../lib/node.mjs";
import { T, newUser, createGuild, inviteLink, joinGuild, msg, send } from "../lib/client.mjs";

let node, b;

before(async () => {
  node = await startNode("poll");
  b = await launch();
});

after(async () => {
  await b?.close();
  await node?.stop();
});

test("long-polling client chats with a WebSocket client", async () => {
  const alice = await newUser(b.browser, node.url, "alice");
  await createGuild(alice.page, "Polling");
  const link = await inviteLink(alice.page);

  const carol = await newUser(b.browser, node.url, "carol", {
    // WebSockets are blocked for carol, as behind a proxy that refuses upgrades.
    init: (ctx) => ctx.addInitScript(() => {
      window.WebSocket = class {
        constructor() {
          setTimeout(() => this.onclose?.({ code: 1006, reason: "" }), 10);
        }
        close() {}
        send() {}
      };
    }),
  });
  await joinGuild(carol.page, link);
  await carol.page.getByRole("button", { name: /^general/ }).waitFor({ timeout: T });
  assert.equal(await carol.page.evaluate(() => window.__hearthGateway.mode), "poll");

  await send(alice.page, "hello poller");
  await msg(carol.page, "hello poller").waitFor({ timeout: T });
  await carol.page.locator("#composer-input").pressSequentially("typing over http", { delay: 10 });
  await alice.page.getByText("carol is typing…").waitFor({ timeout: T });
  await carol.page.locator("#composer-input").press("Enter");
  await msg(alice.page, "typing over http").waitFor({ timeout: T });

  await carol.page.evaluate(() => window.__hearthGateway.dropForTest());
  await send(alice.page, "sent during the gap");
  await msg(carol.page, "sent during the gap").waitFor({ timeout: 30000 });
  assert.deepEqual([...alice.errors, ...carol.errors], []);
});
