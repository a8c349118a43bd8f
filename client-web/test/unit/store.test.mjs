import { test } from "node:test";
import assert from "node:assert/strict";
import { load } from "../lib/load.mjs";

const { Store, findIdx, mentionsMe } = await load("store.ts");

const me = { id: "100", username: "me" };
const bob = { id: "200", username: "bob" };
const g = { id: "1", name: "G", owner_id: "100", roles: [{ id: "1", name: "@everyone", permissions: "0", position: 0, color: 0, hoist: false }, { id: "9", name: "mods", permissions: "0", position: 1, color: 0, hoist: true }] };

function ready() {
  const s = new Store();
  s.apply("READY", { user: me, session_id: "s", guilds: [{ id: "1", unavailable: true }], private_channels: [], read_state: { entries: [{ id: "10", last_message_id: "1000", mention_count: 0 }] } });
  s.apply("GUILD_CREATE", { ...g, channels: [{ id: "10", type: 0, name: "general", last_message_id: "1000" }], members: [{ user: me, roles: ["9"] }, { user: bob, roles: [] }], presences: [{ user: { id: "200" }, status: "online" }], voice_states: [] });
  return s;
}

const m = (id, author = bob, extra = {}) => ({ id, channel_id: "10", guild_id: "1", author, content: "m" + id, timestamp: "", ...extra });

test("store: READY and GUILD_CREATE seed guilds, channels, members, presence, read state", () => {
  const s = ready();
  assert.deepEqual(s.guildOrder, ["1"]);
  assert.equal(s.channels.get("10").name, "general");
  assert.equal(s.members.get("1").size, 2);
  assert.equal(s.presence.get("200"), "online");
  assert.equal(s.unread("10"), false);
});

test("store: messages stay ordered and unique; the node's copy replaces the pending one", () => {
  const s = ready();
  const cm = s.msgs("10");
  cm.hasBefore = false;
  s.apply("MESSAGE_CREATE", m("1003"));
  s.apply("MESSAGE_CREATE", m("1001"));
  s.apply("MESSAGE_CREATE", m("1003"));
  cm.list = [...cm.list, { ...m("pending:x", me), nonce: "n1" }];
  s.apply("MESSAGE_CREATE", m("1005", me, { nonce: "n1" }));
  assert.deepEqual(cm.list.map((x) => x.id), ["1001", "1003", "1005"]);
  s.mergePage("10", [m("999"), m("1002"), m("1001")]);
  assert.deepEqual(cm.list.map((x) => x.id), ["999", "1001", "1002", "1003", "1005"]);
  assert.equal(findIdx(cm.list, "1002"), 2);
  assert.equal(findIdx(cm.list, "1004"), -1);
  s.apply("MESSAGE_UPDATE", { id: "1002", channel_id: "10", content: "edited" });
  assert.equal(cm.list[2].content, "edited");
  s.apply("MESSAGE_DELETE", { id: "1002", channel_id: "10" });
  s.apply("MESSAGE_DELETE_BULK", { ids: ["999", "1001"], channel_id: "10" });
  assert.deepEqual(cm.list.map((x) => x.id), ["1003", "1005"]);
});

test("store: unread and mention counts follow messages and acks", () => {
  const s = ready();
  s.apply("MESSAGE_CREATE", m("1001"));
  assert.equal(s.unread("10"), true);
  assert.equal(s.mentions("10"), 0);
  s.apply("MESSAGE_CREATE", m("1002", bob, { mentions: [me] }));
  s.apply("MESSAGE_CREATE", m("1003", bob, { mention_roles: ["9"] }));
  s.apply("MESSAGE_CREATE", m("1004", bob, { mention_roles: ["77"] }));
  assert.equal(s.mentions("10"), 2);
  assert.deepEqual(s.guildUnread("1"), { unread: true, mentions: 2 });
  s.apply("MESSAGE_ACK", { channel_id: "10", message_id: "1004" });
  assert.deepEqual(s.guildUnread("1"), { unread: false, mentions: 0 });
  // Our own message marks the channel read.
  s.apply("MESSAGE_CREATE", m("1005", me));
  assert.equal(s.unread("10"), false);
});

test("store: reactions count once per user and track our own", () => {
  const s = ready();
  s.msgs("10");
  s.apply("MESSAGE_CREATE", m("1001"));
  const add = (uid) => s.apply("MESSAGE_REACTION_ADD", { channel_id: "10", message_id: "1001", user_id: uid, emoji: { id: null, name: "👍" } });
  const del = (uid) => s.apply("MESSAGE_REACTION_REMOVE", { channel_id: "10", message_id: "1001", user_id: uid, emoji: { id: null, name: "👍" } });
  add("200");
  add("100");
  add("100");
  let r = s.msgs("10").list[0].reactions;
  assert.deepEqual(r, [{ count: 2, me: true, emoji: { id: null, name: "👍" } }]);
  del("100");
  del("100");
  r = s.msgs("10").list[0].reactions;
  assert.deepEqual(r, [{ count: 1, me: false, emoji: { id: null, name: "👍" } }]);
  del("200");
  assert.deepEqual(s.msgs("10").list[0].reactions, []);
});

test("store: presence, bulk presence, typing and voice states", () => {
  const s = ready();
  s.apply("PRESENCE_UPDATE", { user: { id: "200" }, status: "invisible", guild_id: "1" });
  assert.equal(s.presence.get("200"), "offline");
  s.apply("PRESENCE_UPDATE_BULK", { guild_id: "1", presences: [{ user: { id: "200" }, status: "dnd" }] });
  assert.equal(s.presence.get("200"), "dnd");
  s.apply("TYPING_START", { channel_id: "10", user_id: "200" });
  s.apply("TYPING_START", { channel_id: "10", user_id: "100" });
  assert.deepEqual([...s.typing.get("10").keys()], ["200"]);
  s.apply("MESSAGE_CREATE", m("1001"));
  assert.equal(s.typing.get("10").size, 0, "a message ends its author's typing");
  s.apply("VOICE_STATE_UPDATE", { guild_id: "1", channel_id: "20", user_id: "200" });
  assert.equal(s.voice.get("1").get("200").channel_id, "20");
  s.apply("VOICE_STATE_UPDATE", { guild_id: "1", channel_id: null, user_id: "200" });
  assert.equal(s.voice.get("1").has("200"), false);
  s.apply("GUILD_DELETE", { id: "1" });
  assert.deepEqual(s.guildOrder, []);
  assert.equal(s.channels.size, 0);
});

test("mentionsMe: direct, role and everyone", () => {
  assert.equal(mentionsMe({ mentions: [{ id: "1" }] }, "1", []), true);
  assert.equal(mentionsMe({ mention_roles: ["5"] }, "1", ["5"]), true);
  assert.equal(mentionsMe({ mention_everyone: true }, "1", []), true);
  assert.equal(mentionsMe({ mentions: [{ id: "2" }], mention_roles: ["6"] }, "1", ["5"]), false);
});

test("store: DMs count every message from the other side as unread, sort by activity, name by recipient", () => {
  const s = ready();
  const dm = { id: "50", type: 1, last_message_id: null, recipients: [me, bob] };
  s.apply("CHANNEL_CREATE", dm);
  s.apply("CHANNEL_CREATE", { id: "60", type: 1, last_message_id: "1100", recipients: [me, { id: "300", username: "carol" }] });
  assert.deepEqual(s.privateChannels, ["50", "60"]);
  assert.equal(s.channelLabel(s.channels.get("50")), "bob");
  assert.deepEqual(s.dmPeers(s.channels.get("60")), ["300"]);
  // carol's DM is unread from READY's point of view (no read state): it counts one.
  assert.equal(s.dmUnread("60"), 1);
  s.apply("MESSAGE_CREATE", { id: "1200", channel_id: "50", author: bob, content: "hi", timestamp: "" });
  s.apply("MESSAGE_CREATE", { id: "1201", channel_id: "50", author: bob, content: "there", timestamp: "" });
  assert.equal(s.dmUnread("50"), 2);
  assert.equal(s.homeUnread(), 3);
  assert.deepEqual(s.dms().map((c) => c.id), ["50", "60"]);
  // The user's own message marks the DM read; guild channels do not count on Home.
  s.apply("MESSAGE_CREATE", { id: "1202", channel_id: "50", author: me, content: "yo", timestamp: "" });
  assert.equal(s.dmUnread("50"), 0);
  s.apply("MESSAGE_CREATE", m("1203"));
  assert.equal(s.homeUnread(), 1);
});

test("store: a remote user's TYPING_START arriving just after their message is ignored (late federated typing)", () => {
  const s = ready();
  const far = { id: "400", username: "dan@beta" };
  s.apply("GUILD_MEMBER_ADD", { guild_id: "1", user: far, roles: [] });
  s.apply("TYPING_START", { channel_id: "10", user_id: "400" });
  assert.equal(s.typing.get("10").has("400"), true);
  s.apply("MESSAGE_CREATE", m("1300", far));
  assert.equal(s.typing.get("10").has("400"), false);
  s.apply("TYPING_START", { channel_id: "10", user_id: "400" });
  assert.equal(s.typing.get("10").has("400"), false);
  // A local user's typing right after their message counts: it cannot be a late copy.
  s.apply("MESSAGE_CREATE", m("1301"));
  s.apply("TYPING_START", { channel_id: "10", user_id: "200" });
  assert.equal(s.typing.get("10").has("200"), true);
});

test("store: group DM recipients follow CHANNEL_RECIPIENT_ADD and _REMOVE", () => {
  const s = ready();
  const carol = { id: "300", username: "carol" };
  s.apply("CHANNEL_CREATE", { id: "70", type: 3, recipients: [me, bob, carol] });
  assert.equal(s.channelLabel(s.channels.get("70")), "bob, carol");
  s.apply("CHANNEL_RECIPIENT_REMOVE", { channel_id: "70", user: carol });
  assert.equal(s.channelLabel(s.channels.get("70")), "bob");
  s.apply("CHANNEL_RECIPIENT_ADD", { channel_id: "70", user: carol });
  assert.deepEqual(s.dmPeers(s.channels.get("70")), ["200", "300"]);
});
