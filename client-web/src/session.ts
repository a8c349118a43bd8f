// session ties the REST client, the gateway and the store together: login, navigation, history
// loading, and the message actions the UI calls. UI-only state (selection, theme, dialogs) lives in ui.

import { Api, ApiError, type Attachment, type Channel, type Message, snowflakeCmp } from "./api";
import { Gateway, type GatewayStatus } from "./gateway";
import { store, findIdx, HOME, isPrivate } from "./store";

/** Dialogs the app can show; null is none. */
export type Dialog =
  | null
  | { kind: "create-guild" }
  | { kind: "join" }
  | { kind: "create-channel"; guildId: string; type: number; parentId?: string }
  | { kind: "create-role"; guildId: string }
  | { kind: "invite"; channelId: string }
  | { kind: "settings" }
  | { kind: "switcher" }
  | { kind: "pins"; channelId: string }
  | { kind: "confirm-delete"; message: Message }
  | { kind: "profile"; userId: string; guildId?: string }
  | { kind: "image"; attachment: Attachment }
  | { kind: "new-group" }
  | { kind: "new-dm" }
  | { kind: "guild-settings"; guildId: string };

/** UI state; "" selection means none; guildId HOME is the direct messages view. */
export const ui = {
  guildId: "",
  channelId: "",
  status: "connecting" as GatewayStatus,
  dialog: null as Dialog,
  replyTo: null as Message | null,
  editing: "",
  theme: (localStorage.getItem("hearth.theme") as "dark" | "light" | null) ??
    (matchMedia?.("(prefers-color-scheme: light)").matches ? "light" : "dark"),
  /** pane is what a phone-width screen shows: the navigation, the messages, or the member list. */
  pane: "messages" as "nav" | "messages" | "members",
  showMembers: true,
  searchResults: null as null | { query: string; total: number; messages: Message[]; error?: string },
};

export const api = new Api();
let gateway: Gateway | null = null;

export function setUI(patch: Partial<typeof ui>) {
  Object.assign(ui, patch);
  store.emit("ui");
}

export function setTheme(t: "dark" | "light") {
  localStorage.setItem("hearth.theme", t);
  document.documentElement.dataset.theme = t;
  setUI({ theme: t });
}

/** perf records timings the end-to-end test reads (page open to messages shown, channel switch to paint). */
export const perf: Record<string, number> = {};
(window as any).__hearthPerf = perf;

// ---- authentication ----

export async function login(username: string, password: string) {
  const r = await api.post<{ token: string }>("/auth/login", { login: username, password });
  api.setToken(r.token);
  startSession();
}

export async function register(username: string, password: string) {
  const r = await api.post<{ token: string }>("/auth/register", { username, password });
  api.setToken(r.token);
  startSession();
}

export async function logout() {
  try {
    await api.post("/auth/logout");
  } catch {
    // The token is forgotten locally either way.
  }
  endSession();
}

function endSession() {
  gateway?.close();
  gateway = null;
  api.setToken(null);
  store.me = null;
  store.reset();
  setUI({ guildId: "", channelId: "", dialog: null });
  store.emit("me", "guilds", "channels");
}

api.onUnauthorized = endSession;

/** startSession connects the gateway with the stored token. */
export function startSession() {
  if (!api.token) return;
  gateway?.close();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  gateway = new Gateway(
    `${proto}//${location.host}`,
    api.token,
    onDispatch,
    (s) => setUI({ status: s }),
    (code) => {
      if (code === 4004) endSession();
    },
  );
  gateway.start();
  (window as any).__hearthGateway = gateway;
}

/** setStatus changes the user's presence (gateway op 3); "invisible" shows as offline to others. */
export function setStatus(status: string) {
  localStorage.setItem("hearth.status", status);
  if (store.me) store.presence.set(store.me.id, status);
  gateway?.send(3, { status, since: null, activities: [], afk: false });
  store.emit("members", "me");
}

export function reconnectNow() {
  gateway?.reconnectNow();
}

export function sendGateway(op: number, d: unknown) {
  gateway?.send(op, d);
}

/** dispatchHooks lets other modules (voice) observe dispatches without the store knowing them. */
export const dispatchHooks: Array<(t: string, d: any) => void> = [];

function onDispatch(t: string, d: any) {
  store.apply(t, d);
  for (const h of dispatchHooks) h(t, d);
  if (t === "READY") {
    const st = localStorage.getItem("hearth.status") ?? "online";
    store.presence.set(d.user.id, st);
    if (st !== "online") gateway?.send(3, { status: st, since: null, activities: [], afk: false });
    store.emit("ui");
    // After a fresh session (not a resume) caches are gone: reopen the channel we were in.
    const want = ui.channelId || localStorage.getItem("hearth.channel") || "";
    queueMicrotask(() => restoreSelection(want));
  }
  if (t === "GUILD_CREATE" && !ui.guildId) {
    restoreSelection(localStorage.getItem("hearth.channel") || "");
  }
  if (t === "GUILD_DELETE" && d.id === ui.guildId) {
    setUI({ guildId: store.guildOrder[0] ?? "", channelId: "" });
    if (store.guildOrder[0]) selectGuild(store.guildOrder[0]);
  }
  if (t === "GUILD_MEMBER_ADD" && d.user?.id !== store.me?.id && !store.presence.has(d.user.id)) {
    // A new member may already be online: ask for their presence (Request Guild Members, op 8).
    sendGateway(8, { guild_id: d.guild_id, user_ids: [d.user.id], presences: true, limit: 0 });
  }
  if (t === "MESSAGE_CREATE" && d.channel_id === ui.channelId && document.hasFocus()) {
    scheduleAck(d.channel_id);
  }
}

function restoreSelection(cid: string) {
  const c = store.channels.get(cid);
  if (isPrivate(c) && (ui.guildId === HOME || !ui.guildId)) {
    selectChannel(cid);
  } else if (c?.guild_id && store.guilds.has(c.guild_id)) {
    ui.guildId = c.guild_id;
    selectChannel(cid);
  } else if (store.guildOrder.length && store.guilds.has(store.guildOrder[0])) {
    selectGuild(ui.guildId && store.guilds.has(ui.guildId) ? ui.guildId : store.guildOrder[0]);
  } else if (ui.channelId && store.channels.has(ui.channelId)) {
    selectChannel(ui.channelId);
  }
}

// ---- navigation ----

const lastChannelOfGuild = new Map<string, string>();

/** selectGuild opens the guild at its last viewed channel, else its first text channel. */
export function selectGuild(gid: string) {
  const last = lastChannelOfGuild.get(gid);
  const first = store.channelsOf(gid).find((c) => c.type === 0);
  const cid = last && store.channels.has(last) ? last : first?.id ?? "";
  setUI({ guildId: gid, pane: cid ? "messages" : "nav" });
  if (cid) selectChannel(cid);
  else setUI({ channelId: "" });
}

/** selectHome opens the direct messages view at the DM viewed last; the first time, it shows the
 * list only, so that opening (and so reading) a DM stays the user's choice. */
export function selectHome() {
  const last = lastChannelOfGuild.get(HOME);
  const cid = last && store.channels.has(last) ? last : "";
  setUI({ guildId: HOME, searchResults: null, pane: cid ? "messages" : "nav" });
  if (cid) selectChannel(cid);
  else setUI({ channelId: "" });
}

/** selectChannel shows a text channel or DM and loads its newest messages if none are loaded. */
export function selectChannel(cid: string) {
  const c = store.channels.get(cid);
  if (!c) return;
  perf.switchStart = performance.now();
  const gid = c.guild_id ?? (isPrivate(c) ? HOME : ui.guildId);
  lastChannelOfGuild.set(gid, cid);
  localStorage.setItem("hearth.channel", cid);
  setUI({ channelId: cid, guildId: gid, replyTo: null, editing: "", pane: "messages" });
  const cm = store.msgs(cid);
  if (cm.list.length === 0 && !cm.loading) void loadOlder(cid);
  scheduleAck(cid);
}

/** moveChannel selects the previous (-1) or next (+1) text channel of the current guild, or DM in
 * the Home view (Alt+Up/Down). */
export function moveChannel(dir: number) {
  const list = ui.guildId === HOME ? store.dms() : orderedTextChannels(ui.guildId);
  if (!list.length) return;
  const i = list.findIndex((c) => c.id === ui.channelId);
  const next = list[(i + dir + list.length) % list.length];
  selectChannel(next.id);
}

/** orderedTextChannels lists text channels in the order the channel list shows them. */
export function orderedTextChannels(gid: string) {
  const all = store.channelsOf(gid);
  const cats = all.filter((c) => c.type === 4);
  const out = all.filter((c) => c.type === 0 && !c.parent_id);
  for (const cat of cats) out.push(...all.filter((c) => c.type === 0 && c.parent_id === cat.id));
  return out;
}

/** openDM opens (creating it on the node the first time) the direct message channel with a user
 * and shows it (POST /users/@me/channels, spec/client-api.md CAPI-031). */
export async function openDM(userId: string) {
  const known = store.dms().find((c) => c.type === 1 && store.dmPeers(c).includes(userId));
  if (known) {
    selectChannel(known.id);
    return;
  }
  const c = await api.post<Channel>("/users/@me/channels", { recipient_id: userId });
  store.addPrivate(c);
  selectChannel(c.id);
}

/** openDMByName opens the DM with a user named as the node shows usernames: a local name, or
 * `name@node` for someone on another node, who need not share a server with the user
 * (POST /users/@me/channels {"recipient_username"}, spec/client-api.md CAPI-033). */
export async function openDMByName(username: string) {
  const c = await api.post<Channel>("/users/@me/channels", { recipient_username: username });
  store.addPrivate(c);
  selectChannel(c.id);
}

/** MAX_GROUP is how many people a group DM holds, the user included (CAPI-032). */
export const MAX_GROUP = 10;

/** openGroup creates a group DM with the users (POST /users/@me/channels {"recipients"}) and
 * shows it; with one user it opens the plain DM instead. */
export async function openGroup(userIds: string[]) {
  if (userIds.length === 1) return openDM(userIds[0]);
  const c = await api.post<Channel>("/users/@me/channels", { recipients: userIds });
  store.addPrivate(c);
  selectChannel(c.id);
}

/** leaveGroup leaves a group DM (DELETE /channels/{id}); the node's CHANNEL_DELETE removes it. */
export async function leaveGroup(cid: string) {
  await api.del(`/channels/${cid}`);
  store.apply("CHANNEL_DELETE", { id: cid });
  setUI({ channelId: "" });
  selectHome();
}

// ---- history ----

const PAGE = 50;

/** loadOlder fetches the page before the oldest loaded message. */
export async function loadOlder(cid: string) {
  const cm = store.msgs(cid);
  if (cm.loading || !cm.hasBefore) return;
  cm.loading = true;
  store.emit("messages:" + cid);
  const oldest = cm.list.find((m) => !m.id.startsWith("pending:"));
  try {
    const page = await api.get<Message[]>(`/channels/${cid}/messages?limit=${PAGE}` + (oldest ? `&before=${oldest.id}` : ""));
    cm.hasBefore = page.length === PAGE;
    store.mergePage(cid, page);
  } catch (e) {
    cm.hasBefore = false;
    console.warn("hearth: history", e);
  } finally {
    cm.loading = false;
    store.emit("messages:" + cid);
  }
}

/** loadNewer fetches the page after the newest loaded message when the window does not reach the end. */
export async function loadNewer(cid: string) {
  const cm = store.msgs(cid);
  if (cm.loading || !cm.hasAfter || !cm.list.length) return;
  cm.loading = true;
  try {
    const newest = cm.list[cm.list.length - 1];
    const page = await api.get<Message[]>(`/channels/${cid}/messages?limit=${PAGE}&after=${newest.id}`);
    cm.hasAfter = page.length === PAGE;
    store.mergePage(cid, page);
  } finally {
    cm.loading = false;
    store.emit("messages:" + cid);
  }
}

/** jumpTo opens a channel at a given message (a search hit or a reply's original). */
export async function jumpTo(cid: string, mid: string) {
  const c = store.channels.get(cid);
  if (!c) return;
  const cm = store.msgs(cid);
  if (findIdx(cm.list, mid) < 0) {
    const page = await api.get<Message[]>(`/channels/${cid}/messages?limit=${PAGE}&around=${mid}`);
    cm.list = [];
    cm.hasBefore = true;
    cm.hasAfter = page.length > 0 && (!c.last_message_id || page.every((m) => snowflakeCmp(m.id, c.last_message_id!) < 0));
    store.mergePage(cid, page);
  }
  cm.jumpTo = mid;
  selectChannel(cid);
  store.emit("messages:" + cid);
}

/** refsAsked holds the replies whose original was asked for, so each is fetched at most once. */
const refsAsked = new Set<string>();

/** referenced returns the message a reply answers: the node's referenced_message, else the original
 * if it is loaded. Otherwise it fetches the original once (message lists do not carry it) and puts
 * it on the reply, and returns undefined meanwhile. */
export function referenced(m: Message): Message | undefined {
  if (m.referenced_message) return m.referenced_message;
  const ref = m.message_reference;
  if (!ref?.message_id || m.type !== 19) return undefined;
  const cid = ref.channel_id ?? m.channel_id;
  const cm = store.messages.get(cid);
  const i = cm ? findIdx(cm.list, ref.message_id) : -1;
  if (i >= 0) return cm!.list[i];
  if (m.id.startsWith("pending:") || refsAsked.has(m.id)) return undefined;
  refsAsked.add(m.id);
  api.get<Message>(`/channels/${cid}/messages/${ref.message_id}`).then(
    (r) => store.editMessage(m.channel_id, m.id, (x) => ({ ...x, referenced_message: r })),
    () => {},
  );
  return undefined;
}

// ---- read states ----

let ackTimer: number | undefined;

// A message that arrived in the open channel while the window was in the background is read
// once the user comes back to it.
if (typeof window !== "undefined") {
  window.addEventListener("focus", () => {
    if (ui.channelId) scheduleAck(ui.channelId);
  });
}

function scheduleAck(cid: string) {
  clearTimeout(ackTimer);
  ackTimer = window.setTimeout(() => void ack(cid), 300);
}

async function ack(cid: string) {
  const c = store.channels.get(cid);
  const last = c?.last_message_id;
  if (!last || !store.unread(cid) && store.mentions(cid) === 0) return;
  store.reads.set(cid, { lastRead: last, mentions: 0 });
  store.emit("reads", "channels");
  try {
    await api.post(`/channels/${cid}/messages/${last}/ack`, {});
  } catch (e) {
    console.warn("hearth: ack", e);
  }
}

// ---- messages ----

let nonceSeq = 0;

/** MAX_FILES is how many files one message may carry (spec/media.md MEDIA-010). */
export const MAX_FILES = 10;

/** Upload progress of a pending message: sent and total bytes (total 0 until known). */
export interface Progress {
  sent: number;
  total: number;
}

/** uploads holds the abort controllers of messages whose files are being uploaded, by pending ID. */
const uploads = new Map<string, AbortController>();

/** fmtSize writes a byte count for people: 1.4 MB, 820 KB, 12 bytes. */
export function fmtSize(n: number): string {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(1) + " GB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
  if (n >= 1 << 10) return Math.round(n / (1 << 10)) + " KB";
  return n + " bytes";
}

/** uploadError explains a failed upload; a 413 names the files and says the server refused their size. */
function uploadError(e: unknown, files: File[]): string {
  const a = e as ApiError;
  if (a.status === 413 && /quota/i.test(a.message ?? "")) {
    return "Your upload quota on this server is used up (413): delete some of your files or ask the server's admin.";
  }
  if (a.status === 413) {
    const total = files.reduce((n, f) => n + f.size, 0);
    const names = files.map((f) => `${f.name} (${fmtSize(f.size)})`).join(", ");
    return `Too large: the server refuses files this big (413). ${files.length > 1 ? `Files ${names}, ${fmtSize(total)} in all.` : `File ${names}.`}`;
  }
  const f = Object.values(a.fields ?? {});
  return f.length ? f.join(" ") : a.message ?? String(e);
}

/** sendMessage shows the message at once (pending) and replaces it with the node's copy. With
 * files, it uploads them in one multipart request and shows the upload's progress on the pending
 * message. */
export async function sendMessage(cid: string, content: string, files: File[] = []) {
  const nonce = String(Date.now()) + String(nonceSeq++).padStart(3, "0");
  const replyTo = ui.replyTo;
  const pending: Message = {
    id: "pending:" + nonce,
    channel_id: cid,
    author: store.me!,
    content,
    timestamp: new Date().toISOString(),
    nonce,
    referenced_message: replyTo,
    type: replyTo ? 19 : 0,
    attachments: files.map((f, i) => ({ id: "local:" + i, filename: f.name, size: f.size, url: "", proxy_url: "", content_type: f.type })),
  };
  if (files.length) (pending as any).progress = { sent: 0, total: files.reduce((n, f) => n + f.size, 0) } as Progress;
  const cm = store.msgs(cid);
  cm.list = [...cm.list, pending];
  setUI({ replyTo: null });
  store.emit("messages:" + cid);
  const body: any = { content, nonce };
  if (replyTo) body.message_reference = { message_id: replyTo.id, channel_id: cid };
  try {
    let m: Message;
    if (files.length) {
      body.attachments = files.map((f, i) => ({ id: i, filename: f.name }));
      const ac = new AbortController();
      uploads.set(pending.id, ac);
      let shown = -1;
      m = await api.upload<Message>(
        `/channels/${cid}/messages`,
        body,
        files,
        (sent, total) => {
          // Re-render at most once per percent.
          const pct = total ? Math.floor((sent / total) * 100) : 0;
          if (pct === shown) return;
          shown = pct;
          store.editMessage(cid, pending.id, (x) => ({ ...x, progress: { sent, total } }) as Message);
        },
        ac.signal,
      ).finally(() => uploads.delete(pending.id));
    } else {
      m = await api.post<Message>(`/channels/${cid}/messages`, body);
    }
    // The gateway copy usually arrived first; if not, put the answer in place of the pending one.
    const i = cm.list.findIndex((x) => x.id === pending.id);
    if (i >= 0) {
      cm.list = cm.list.filter((x) => x.id !== pending.id);
      store.mergePage(cid, [m]);
    }
  } catch (e) {
    store.editMessage(cid, pending.id, (m) => ({ ...m, progress: undefined, failed: files.length ? uploadError(e, files) : (e as ApiError).message }) as Message);
    // Worth sending again: a cancelled upload, a dropped connection, a busy or failing node; not
    // what the node refused for the message itself (too large, not allowed, malformed).
    const st = (e as ApiError).status ?? 0;
    if (st === 0 || st === 429 || st >= 500) retries.set(pending.id, { content, files, replyTo });
  }
}

/** retries keeps what a failed message was made of, by pending ID, so it can be sent again. */
const retries = new Map<string, { content: string; files: File[]; replyTo: Message | null }>();

/** canRetry tells whether a failed pending message can be sent again. */
export function canRetry(m: Message): boolean {
  return retries.has(m.id);
}

/** retryMessage sends a failed message again (a new pending copy replaces the failed one). */
export function retryMessage(m: Message) {
  const r = retries.get(m.id);
  if (!r) return;
  retries.delete(m.id);
  const cm = store.msgs(m.channel_id);
  cm.list = cm.list.filter((x) => x.id !== m.id);
  setUI({ replyTo: r.replyTo });
  void sendMessage(m.channel_id, r.content, r.files);
}

/** cancelUpload stops the upload of a pending message; the message then shows as not sent. */
export function cancelUpload(m: Message) {
  uploads.get(m.id)?.abort();
}

export async function editMessage(m: Message, content: string) {
  await api.patch(`/channels/${m.channel_id}/messages/${m.id}`, { content });
}

export async function deleteMessage(m: Message) {
  if (m.id.startsWith("pending:")) {
    cancelUpload(m);
    retries.delete(m.id);
    const cm = store.msgs(m.channel_id);
    cm.list = cm.list.filter((x) => x.id !== m.id);
    store.emit("messages:" + m.channel_id);
    return;
  }
  await api.del(`/channels/${m.channel_id}/messages/${m.id}`);
}

/** toggleReaction adds the reaction, or removes it when the user already reacted with it. */
export async function toggleReaction(m: Message, emoji: string) {
  const mine = m.reactions?.find((r) => r.emoji.name === emoji)?.me;
  const path = `/channels/${m.channel_id}/messages/${m.id}/reactions/${encodeURIComponent(emoji)}/@me`;
  if (mine) await api.del(path);
  else await api.put(path);
}

export async function setPinned(m: Message, pinned: boolean) {
  const path = `/channels/${m.channel_id}/pins/${m.id}`;
  if (pinned) await api.put(path);
  else await api.del(path);
  store.editMessage(m.channel_id, m.id, (x) => ({ ...x, pinned }));
}

let lastTyping = 0;

/** typing tells the node the user is typing, at most every 8 seconds (TYPING_START lasts 10). */
export function typing(cid: string) {
  const now = Date.now();
  if (now - lastTyping < 8000) return;
  lastTyping = now;
  api.post(`/channels/${cid}/typing`).catch(() => {});
}

export function resetTypingThrottle() {
  lastTyping = 0;
}
