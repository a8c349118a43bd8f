// store holds the client's state (guilds, channels, members, messages, read states, typing,
// voice) as plain maps, applies gateway dispatches to it, and tells subscribed components which
// topics changed. Components re-render per topic, so a message in one channel does not re-render
// the member list.

import { useEffect, useReducer, useRef } from "preact/hooks";
import type { Channel, Guild, Member, Message, Role, User, VoiceState, Reaction } from "./api";
import { snowflakeCmp } from "./api";

/** Messages loaded for one channel, oldest first, as one contiguous window of its history. */
export interface ChannelMessages {
  list: Message[];
  /** hasBefore is true while older messages may exist on the node. */
  hasBefore: boolean;
  /** hasAfter is true when the window does not reach the newest message (after a jump). */
  hasAfter: boolean;
  loading: boolean;
  /** jumpTo asks the list to scroll to this message once (search hits, reply previews). */
  jumpTo?: string;
}

/** Unread state of a channel; lastRead "" means never read. */
export interface ReadState {
  lastRead: string;
  mentions: number;
}

type Listener = () => void;

/** TYPING_AFTER_POST_MS is how long after a user's message a TYPING_START of theirs in the same
 * channel is taken as a late copy of the typing that preceded the message. */
const TYPING_AFTER_POST_MS = 3000;

/** HOME is the rail's "Home" selection: direct messages instead of a guild. */
export const HOME = "@me";

/** isPrivate tells whether a channel is a DM (type 1) or a group DM (type 3). */
export function isPrivate(c: Channel | undefined): boolean {
  return !!c && (c.type === 1 || c.type === 3);
}

/** Store is the single client state; zero value fields are empty maps. */
export class Store {
  me: User | null = null;
  sessionId = "";
  guilds = new Map<string, Guild>();
  /** guildOrder keeps the rail order (order of arrival). */
  guildOrder: string[] = [];
  channels = new Map<string, Channel>();
  members = new Map<string, Map<string, Member>>();
  users = new Map<string, User>();
  presence = new Map<string, string>();
  messages = new Map<string, ChannelMessages>();
  reads = new Map<string, ReadState>();
  typing = new Map<string, Map<string, number>>();
  voice = new Map<string, Map<string, VoiceState>>();
  privateChannels: string[] = [];

  /** lastPost maps "channel:user" to when that user's latest message there arrived (ms). */
  private lastPost = new Map<string, number>();
  /** lastPing is the latest message for the user (a mention, or a DM from someone else); the
   * "ping" topic is emitted for each. */
  lastPing: Message | null = null;
  private listeners = new Map<string, Set<Listener>>();
  private pending = new Set<string>();
  private scheduled = false;
  /** emits counts the emits of each topic, so that a subscriber can tell whether it missed one (see useTopics). */
  private emits = new Map<string, number>();

  /** emitted is how many times the topics have been emitted, together. */
  emitted(topics: string[]): number {
    let n = 0;
    for (const t of topics) n += this.emits.get(t) ?? 0;
    return n;
  }

  /** on subscribes to a topic; the returned function unsubscribes. */
  on(topic: string, fn: Listener): () => void {
    let s = this.listeners.get(topic);
    if (!s) this.listeners.set(topic, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }

  /** emit marks topics changed; listeners run once per microtask however many changes happened. */
  emit(...topics: string[]) {
    for (const t of topics) {
      this.pending.add(t);
      this.emits.set(t, (this.emits.get(t) ?? 0) + 1);
    }
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const ts = [...this.pending];
      this.pending.clear();
      const run = new Set<Listener>();
      for (const t of ts) this.listeners.get(t)?.forEach((f) => run.add(f));
      run.forEach((f) => f());
    });
  }

  reset() {
    this.guilds.clear();
    this.guildOrder = [];
    this.channels.clear();
    this.members.clear();
    this.presence.clear();
    this.messages.clear();
    this.reads.clear();
    this.typing.clear();
    this.voice.clear();
    this.privateChannels = [];
  }

  // ---- queries ----

  /** channelsOf lists a guild's channels sorted by position then ID. */
  channelsOf(gid: string): Channel[] {
    const out: Channel[] = [];
    for (const c of this.channels.values()) if (c.guild_id === gid) out.push(c);
    return out.sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || snowflakeCmp(a.id, b.id));
  }

  /** displayName is the member's nick in the guild, else global name, else username. */
  displayName(uid: string, gid?: string): string {
    const m = gid ? this.members.get(gid)?.get(uid) : undefined;
    // The users map has the latest copy of every user (USER_UPDATE, members, message authors).
    const u = this.users.get(uid) ?? m?.user;
    return m?.nick || u?.global_name || u?.username || "unknown user";
  }

  /** roleColor is the colour of the member's highest coloured role, or 0 for none. */
  roleColor(uid: string, gid?: string): number {
    if (!gid) return 0;
    const g = this.guilds.get(gid);
    const m = this.members.get(gid)?.get(uid);
    if (!g || !m) return 0;
    let best: Role | null = null;
    for (const r of g.roles) if (m.roles.includes(r.id) && r.color && (!best || r.position > best.position)) best = r;
    return best?.color ?? 0;
  }

  unread(cid: string): boolean {
    const c = this.channels.get(cid);
    if (!c?.last_message_id) return false;
    const r = this.reads.get(cid);
    return !r || snowflakeCmp(c.last_message_id, r.lastRead) > 0;
  }

  mentions(cid: string): number {
    return this.reads.get(cid)?.mentions ?? 0;
  }

  /** dmPeers lists the other recipients of a private channel (all of them but the user). */
  dmPeers(c: Channel): string[] {
    const ids = (c.recipients ?? []).map((u) => u.id).filter((id) => id !== this.me?.id);
    return ids.length ? ids : (c.recipients ?? []).map((u) => u.id).slice(0, 1);
  }

  /** channelLabel names a channel as the UI shows it: a guild channel's name, or a DM's recipients. */
  channelLabel(c: Channel | undefined): string {
    if (!c) return "";
    if (!isPrivate(c)) return c.name ?? "";
    if (c.name) return c.name;
    return this.dmPeers(c).map((id) => this.displayName(id)).join(", ") || "direct message";
  }

  /** dms lists the user's private channels, the most recently active first. */
  dms(): Channel[] {
    const out: Channel[] = [];
    for (const id of this.privateChannels) {
      const c = this.channels.get(id);
      if (c) out.push(c);
    }
    return out.sort((a, b) => snowflakeCmp(b.last_message_id ?? b.id, a.last_message_id ?? a.id));
  }

  /** dmUnread counts the unread messages waiting in a private channel: every DM message counts
   * as a mention, as on Discord, and an unread DM counts at least one. */
  dmUnread(cid: string): number {
    const n = this.mentions(cid);
    return n > 0 ? n : this.unread(cid) ? 1 : 0;
  }

  /** homeUnread sums the unread messages of all private channels, for the rail's Home button. */
  homeUnread(): number {
    let n = 0;
    for (const id of this.privateChannels) n += this.dmUnread(id);
    return n;
  }

  /** addPrivate records a private channel (from READY, CHANNEL_CREATE or the REST answer). */
  addPrivate(c: Channel) {
    this.channels.set(c.id, { ...this.channels.get(c.id), ...c });
    if (!this.privateChannels.includes(c.id)) this.privateChannels.push(c.id);
    for (const u of c.recipients ?? []) this.putUser(u);
    this.emit("channels");
  }

  /** pingCount counts what waits for the user everywhere: mentions in guilds and unread DMs
   * (the count the tab's title shows). */
  pingCount(): number {
    let n = this.homeUnread();
    for (const c of this.channels.values()) if (c.guild_id && c.type === 0) n += this.mentions(c.id);
    return n;
  }

  guildUnread(gid: string): { unread: boolean; mentions: number } {
    let unread = false;
    let mentions = 0;
    for (const c of this.channels.values()) {
      if (c.guild_id !== gid || c.type !== 0) continue;
      if (this.unread(c.id)) unread = true;
      mentions += this.mentions(c.id);
    }
    return { unread, mentions };
  }

  msgs(cid: string): ChannelMessages {
    let m = this.messages.get(cid);
    if (!m) this.messages.set(cid, (m = { list: [], hasBefore: true, hasAfter: false, loading: false }));
    return m;
  }

  // ---- dispatch application ----

  private putUser(u: User | undefined) {
    if (u?.id) this.users.set(u.id, { ...this.users.get(u.id), ...u });
  }

  private putGuild(g: Guild) {
    const known = this.guilds.has(g.id);
    this.guilds.set(g.id, { ...g, channels: undefined, members: undefined, presences: undefined, voice_states: undefined });
    if (!known && !this.guildOrder.includes(g.id)) this.guildOrder.push(g.id);
    for (const c of g.channels ?? []) this.channels.set(c.id, { ...c, guild_id: g.id });
    const mm = this.members.get(g.id) ?? new Map<string, Member>();
    for (const m of g.members ?? []) {
      mm.set(m.user.id, m);
      this.putUser(m.user);
    }
    this.members.set(g.id, mm);
    for (const p of g.presences ?? []) this.presence.set(p.user.id, p.status);
    const vs = new Map<string, VoiceState>();
    for (const v of g.voice_states ?? []) if (v.channel_id) vs.set(v.user_id, { ...v, guild_id: g.id });
    this.voice.set(g.id, vs);
  }

  private dropGuild(gid: string) {
    this.guilds.delete(gid);
    this.guildOrder = this.guildOrder.filter((x) => x !== gid);
    for (const [id, c] of this.channels) if (c.guild_id === gid) this.channels.delete(id);
    this.members.delete(gid);
    this.voice.delete(gid);
  }

  /** apply updates the state from one gateway dispatch and emits the topics it touched. */
  apply(t: string, d: any) {
    switch (t) {
      case "READY": {
        this.reset();
        this.me = d.user;
        this.putUser(d.user);
        this.sessionId = d.session_id;
        for (const g of d.guilds ?? []) if (!g.unavailable) this.putGuild(g);
        else if (!this.guildOrder.includes(g.id)) this.guildOrder.push(g.id);
        for (const c of d.private_channels ?? []) this.addPrivate(c);
        for (const e of d.read_state?.entries ?? []) {
          this.reads.set(e.id, { lastRead: e.last_message_id ?? "", mentions: e.mention_count ?? 0 });
        }
        this.emit("guilds", "channels", "members", "me", "voice", "reads", "messages");
        break;
      }
      case "GUILD_CREATE":
      case "GUILD_UPDATE":
        if (t === "GUILD_UPDATE") {
          const old = this.guilds.get(d.id);
          if (old) this.guilds.set(d.id, { ...old, ...d, channels: undefined, members: undefined });
        } else this.putGuild(d);
        this.emit("guilds", "channels", "members", "voice", "reads");
        break;
      case "GUILD_DELETE":
        this.dropGuild(d.id);
        this.emit("guilds", "channels", "members", "voice");
        break;
      case "GUILD_ROLE_CREATE":
      case "GUILD_ROLE_UPDATE": {
        const g = this.guilds.get(d.guild_id);
        if (g) g.roles = [...g.roles.filter((r) => r.id !== d.role.id), d.role];
        this.emit("guilds", "members");
        break;
      }
      case "GUILD_ROLE_DELETE": {
        const g = this.guilds.get(d.guild_id);
        if (g) g.roles = g.roles.filter((r) => r.id !== d.role_id);
        this.emit("guilds", "members");
        break;
      }
      case "CHANNEL_CREATE":
      case "CHANNEL_UPDATE":
        if (isPrivate(d)) this.addPrivate(d);
        else this.channels.set(d.id, { ...this.channels.get(d.id), ...d });
        this.emit("channels");
        break;
      case "CHANNEL_DELETE":
        this.channels.delete(d.id);
        this.messages.delete(d.id);
        this.privateChannels = this.privateChannels.filter((x) => x !== d.id);
        this.emit("channels");
        break;
      case "CHANNEL_RECIPIENT_ADD":
      case "CHANNEL_RECIPIENT_REMOVE": {
        // Someone joined or left a group DM.
        const c = this.channels.get(d.channel_id);
        if (c && d.user?.id) {
          const others = (c.recipients ?? []).filter((u) => u.id !== d.user.id);
          this.channels.set(c.id, { ...c, recipients: t === "CHANNEL_RECIPIENT_ADD" ? [...others, d.user] : others });
          this.putUser(d.user);
          this.emit("channels");
        }
        break;
      }
      case "CHANNEL_PINS_UPDATE":
        this.emit("pins:" + d.channel_id);
        break;
      case "GUILD_MEMBER_ADD":
      case "GUILD_MEMBER_UPDATE": {
        const mm = this.members.get(d.guild_id) ?? new Map();
        this.putUser(d.user);
        mm.set(d.user.id, { ...mm.get(d.user.id), ...d });
        this.members.set(d.guild_id, mm);
        const g = this.guilds.get(d.guild_id);
        if (g && t === "GUILD_MEMBER_ADD") g.member_count = (g.member_count ?? mm.size - 1) + 1;
        this.emit("members");
        break;
      }
      case "GUILD_MEMBER_REMOVE":
        this.members.get(d.guild_id)?.delete(d.user.id);
        this.emit("members");
        break;
      case "GUILD_MEMBERS_CHUNK": {
        const mm = this.members.get(d.guild_id) ?? new Map();
        for (const m of d.members ?? []) {
          mm.set(m.user.id, m);
          this.putUser(m.user);
        }
        for (const p of d.presences ?? []) this.presence.set(p.user.id, p.status);
        this.members.set(d.guild_id, mm);
        this.emit("members");
        break;
      }
      case "PRESENCE_UPDATE":
        // Our own status is what we chose (others see "invisible" as offline).
        if (this.me && d.user.id === this.me.id && !d.guild_id) break;
        this.presence.set(d.user.id, d.status === "invisible" ? "offline" : d.status);
        if (d.user.username) this.putUser(d.user);
        this.emit("members");
        break;
      case "PRESENCE_UPDATE_BULK":
        // Hearth batches many presence changes of one guild into one dispatch.
        for (const p of d.presences ?? []) this.presence.set(p.user.id, p.status === "invisible" ? "offline" : p.status);
        this.emit("members");
        break;
      case "USER_UPDATE":
        this.putUser(d);
        if (this.me && d.id === this.me.id) this.me = { ...this.me, ...d };
        this.emit("me", "members");
        break;
      case "MESSAGE_CREATE":
        this.onMessageCreate(d);
        break;
      case "MESSAGE_UPDATE": {
        const cm = this.messages.get(d.channel_id);
        const i = cm ? findIdx(cm.list, d.id) : -1;
        if (cm && i >= 0) {
          cm.list[i] = { ...cm.list[i], ...d };
          cm.list = cm.list.slice();
          this.emit("messages:" + d.channel_id);
        }
        break;
      }
      case "MESSAGE_DELETE":
        this.removeMessages(d.channel_id, [d.id]);
        break;
      case "MESSAGE_DELETE_BULK":
        this.removeMessages(d.channel_id, d.ids ?? []);
        break;
      case "MESSAGE_REACTION_ADD":
      case "MESSAGE_REACTION_REMOVE":
        this.react(d.channel_id, d.message_id, d.emoji?.name, d.user_id, t === "MESSAGE_REACTION_ADD");
        break;
      case "MESSAGE_REACTION_REMOVE_ALL":
        this.editMessage(d.channel_id, d.message_id, (m) => ({ ...m, reactions: [] }));
        break;
      case "MESSAGE_ACK":
        this.reads.set(d.channel_id, { lastRead: d.message_id, mentions: 0 });
        this.emit("reads");
        break;
      case "TYPING_START": {
        if (this.me && d.user_id === this.me.id) break;
        // Typing of a user from another node ("name@node") is batched (about a second) and can
        // arrive after the message it announced, which would show "is typing" for 10 s after the
        // message: drop it. A local user's typing always arrives before their message.
        const remote = (this.users.get(d.user_id)?.username ?? d.member?.user?.username ?? "").includes("@");
        if (remote && Date.now() - (this.lastPost.get(d.channel_id + ":" + d.user_id) ?? -Infinity) < TYPING_AFTER_POST_MS) break;
        let tm = this.typing.get(d.channel_id);
        if (!tm) this.typing.set(d.channel_id, (tm = new Map()));
        tm.set(d.user_id, Date.now() + 10000);
        if (d.member?.user) {
          this.putUser(d.member.user);
          if (d.guild_id) this.members.get(d.guild_id)?.set(d.user_id, { ...this.members.get(d.guild_id)?.get(d.user_id), ...d.member });
        }
        this.emit("typing:" + d.channel_id);
        break;
      }
      case "VOICE_STATE_UPDATE": {
        const gid = d.guild_id;
        if (!gid) break;
        let vs = this.voice.get(gid);
        if (!vs) this.voice.set(gid, (vs = new Map()));
        if (d.channel_id) vs.set(d.user_id, d);
        else vs.delete(d.user_id);
        if (d.member?.user) this.putUser(d.member.user);
        this.emit("voice");
        break;
      }
    }
  }

  private onMessageCreate(m: Message) {
    this.putUser(m.author);
    const cm = this.messages.get(m.channel_id);
    if (cm && !cm.hasAfter) {
      // Replace the optimistic copy (same nonce) if there is one.
      const k = m.nonce != null ? cm.list.findIndex((x) => x.nonce === m.nonce && x.id.startsWith("pending:")) : -1;
      if (k >= 0) cm.list.splice(k, 1);
      if (findIdx(cm.list, m.id) < 0) cm.list = insertSorted(cm.list, m);
      else cm.list = cm.list.slice();
    }
    const c = this.channels.get(m.channel_id);
    if (c) c.last_message_id = m.id;
    const tm = this.typing.get(m.channel_id);
    if (tm?.delete(m.author.id)) this.emit("typing:" + m.channel_id);
    if (this.lastPost.size > 10000) this.lastPost.clear();
    this.lastPost.set(m.channel_id + ":" + m.author.id, Date.now());
    if (this.me && m.author.id === this.me.id) {
      this.reads.set(m.channel_id, { lastRead: m.id, mentions: 0 });
    } else if (this.me && (isPrivate(c) || mentionsMe(m, this.me.id, this.members.get(m.guild_id ?? "")?.get(this.me.id)?.roles ?? []))) {
      // In a DM every message from the other side is for the user, as a mention is.
      const r = this.reads.get(m.channel_id) ?? { lastRead: "", mentions: 0 };
      this.reads.set(m.channel_id, { ...r, mentions: r.mentions + 1 });
      this.lastPing = m;
      this.emit("ping");
    }
    this.emit("messages:" + m.channel_id, "channels", "reads", "newmessage");
  }

  private removeMessages(cid: string, ids: string[]) {
    const cm = this.messages.get(cid);
    if (!cm) return;
    const drop = new Set(ids);
    cm.list = cm.list.filter((m) => !drop.has(m.id));
    this.emit("messages:" + cid);
  }

  editMessage(cid: string, mid: string, f: (m: Message) => Message) {
    const cm = this.messages.get(cid);
    const i = cm ? findIdx(cm.list, mid) : -1;
    if (!cm || i < 0) return;
    cm.list[i] = f(cm.list[i]);
    cm.list = cm.list.slice();
    this.emit("messages:" + cid);
  }

  private react(cid: string, mid: string, name: string, uid: string, add: boolean) {
    if (!name) return;
    const mine = this.me?.id === uid;
    this.editMessage(cid, mid, (m) => {
      const rs: Reaction[] = (m.reactions ?? []).map((r) => ({ ...r }));
      let r = rs.find((x) => x.emoji.name === name);
      if (add) {
        if (!r) rs.push((r = { count: 0, me: false, emoji: { id: null, name } }));
        if (mine && r.me) return m;
        r.count++;
        if (mine) r.me = true;
      } else if (r) {
        if (mine && !r.me) return m;
        r.count--;
        if (mine) r.me = false;
      }
      return { ...m, reactions: rs.filter((x) => x.count > 0) };
    });
  }

  /** prepend merges an older page (any order) before the loaded window. */
  mergePage(cid: string, page: Message[]) {
    const cm = this.msgs(cid);
    let list = cm.list;
    for (const m of page) {
      this.putUser(m.author);
      if (findIdx(list, m.id) < 0) list = insertSorted(list, m);
    }
    cm.list = list;
    this.emit("messages:" + cid);
  }
}

/** findIdx finds a message by ID in an ID-sorted list (binary search), -1 if absent. */
export function findIdx(list: Message[], id: string): number {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = snowflakeCmp(list[mid].id, id);
    if (c === 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  // Optimistic messages ("pending:...") are not sorted numerically; look at the tail.
  if (id.startsWith("pending:")) return list.findIndex((m) => m.id === id);
  return -1;
}

function insertSorted(list: Message[], m: Message): Message[] {
  const out = list.slice();
  // Pending messages always stay at the end.
  let i = out.length;
  while (i > 0 && (out[i - 1].id.startsWith("pending:") || snowflakeCmp(out[i - 1].id, m.id) > 0)) i--;
  out.splice(i, 0, m);
  return out;
}

/** mentionsMe tells whether a message pings the user: a direct mention, a role of theirs, or @everyone. */
export function mentionsMe(m: Message, uid: string, roles: string[]): boolean {
  if (m.mention_everyone) return true;
  if (m.mentions?.some((u) => u.id === uid)) return true;
  return !!m.mention_roles?.some((r) => roles.includes(r));
}

/** store is the app's one state. */
export const store = new Store();

/** useTopics re-renders the calling component whenever one of the topics is emitted. The
 * subscription starts in an effect, after the render: whatever was emitted in between (READY
 * arriving before the app's first effects ran left it on "Connecting…" for good) is caught by
 * comparing store.emitted(topics) with its value at render time, and renders once more. */
export function useTopics(...topics: string[]) {
  const [, bump] = useReducer((x: number) => x + 1, 0);
  const key = topics.join("|");
  const rendered = useRef(0);
  rendered.current = store.emitted(topics);
  useEffect(() => {
    const offs = topics.map((t) => store.on(t, bump as () => void));
    if (store.emitted(topics) !== rendered.current) bump(0);
    return () => offs.forEach((f) => f());
  }, [key]);
}
