import { useEffect, useReducer, useState } from "preact/hooks";
import { Icon } from "../icons";
import { HOME, isPrivate, store, useTopics } from "../store";
import { api, leaveGroup, moveChannel, perf, reconnectNow, setStatus, setUI, startSession, ui } from "../session";
import { preview } from "../render";
import { can, P } from "../perms";
import { ChannelList } from "./ChannelList";
import { Avatar } from "./Avatar";
import { attachHooks, Composer } from "./Composer";
import { Dialogs } from "./Dialogs";
import { GuildRail } from "./GuildRail";
import { Login } from "./Login";
import { MemberList } from "./MemberList";
import { MessageList } from "./MessageList";
import { SearchBox, SearchResults } from "./Search";
import { Typing } from "./Typing";
import { ScreenShares, VideoTiles, VoicePanel } from "./Voice";

/** Banner tells the user the gateway dropped, counts down to the next attempt, and offers to retry now. */
function Banner() {
  useTopics("ui");
  const [, tick] = useReducer((x: number) => x + 1, 0);
  const down = ui.status === "reconnecting" || ui.status === "offline";
  useEffect(() => {
    if (!down) return;
    const t = setInterval(tick, 1000);
    return () => clearInterval(t);
  }, [down]);
  if (!down) return null;
  const gw = (window as any).__hearthGateway;
  const secs = gw?.retryAt ? Math.max(0, Math.ceil((gw.retryAt - Date.now()) / 1000)) : 0;
  return (
    <div class="banner" role="alert">
      {ui.status === "offline" ? "Disconnected from the server." : `Connection lost. Reconnecting${secs ? ` in ${secs} s` : "…"}`}
      <button type="button" onClick={reconnectNow}>
        Reconnect now
      </button>
    </div>
  );
}

/** Announcer is a polite live region that reads new messages in the open channel to screen readers. */
function Announcer() {
  const [text, setText] = useState("");
  useEffect(
    () =>
      store.on("newmessage", () => {
        const cm = store.messages.get(ui.channelId);
        const m = cm?.list[cm.list.length - 1];
        if (!m || m.author.id === store.me?.id || m.id.startsWith("pending:")) return;
        const gid = store.channels.get(m.channel_id)?.guild_id;
        setText(`${store.displayName(m.author.id, gid)}: ${preview(m.content, gid, 300)}`);
      }),
    [],
  );
  return (
    <div class="sr-only" aria-live="polite" aria-atomic="true" id="announcer">
      {text}
    </div>
  );
}

function ChatHeader() {
  useTopics("ui", "channels");
  const c = store.channels.get(ui.channelId);
  const home = ui.guildId === HOME;
  const dm = isPrivate(c) || home;
  return (
    <header class="chat-head">
      <button type="button" class="icon phone-only" aria-label="Show channels" onClick={() => setUI({ pane: "nav" })}>
        <Icon name="menu" />
      </button>
      <h2>
        <span class="hash">
          <Icon name={home && !c ? "chat" : dm ? "at" : "hash"} size={22} />
        </span>
        {home && !c ? "Direct Messages" : store.channelLabel(c)}
      </h2>
      {c?.topic && <span class="topic muted">{c.topic}</span>}
      <div class="head-actions">
        <button type="button" class="icon" aria-label="Pinned messages" title="Pinned messages" disabled={!c} onClick={() => c && setUI({ dialog: { kind: "pins", channelId: c.id } })}>
          <Icon name="pin" />
        </button>
        <button
          type="button"
          class="icon"
          aria-label="Member list"
          aria-pressed={ui.showMembers}
          title="Member list"
          onClick={() => setUI({ showMembers: !ui.showMembers, pane: ui.pane === "members" ? "messages" : "members" })}
        >
          <Icon name="members" />
        </button>
        {c?.type === 3 && (
          <button type="button" class="icon danger" aria-label="Leave group" title="Leave group" onClick={() => void leaveGroup(c.id).catch((e) => console.warn("hearth: leave group", e))}>
            <Icon name="join" />
          </button>
        )}
        {(c || !home) && <SearchBox />}
      </div>
    </header>
  );
}

const STATUSES: Array<[string, string]> = [
  ["online", "Online"],
  ["idle", "Idle"],
  ["dnd", "Do not disturb"],
  ["invisible", "Invisible"],
];

function UserPanel() {
  useTopics("me", "members");
  const me = store.me;
  const mine = (me && store.presence.get(me.id)) || "online";
  return (
    <div class="user-panel">
      <Avatar uid={me?.id ?? ""} name={me?.global_name || me?.username || "?"} hint={me}>
        <span class={"status-dot " + (mine === "invisible" ? "offline" : mine)} />
      </Avatar>
      <div class="me-box">
        <span class="me-name">{me?.global_name || me?.username}</span>
        <select class="status-select" aria-label="Your status" value={mine} onChange={(e) => setStatus(e.currentTarget.value)}>
          {STATUSES.map(([v, l]) => (
            <option key={v} value={v}>
              {l}
            </option>
          ))}
        </select>
      </div>
      <button type="button" class="icon" aria-label="Settings" title="Settings" onClick={() => setUI({ dialog: { kind: "settings" } })}>
        <Icon name="gear" />
      </button>
    </div>
  );
}

/** hasFiles tells whether a drag carries files (not text or a link). */
function hasFiles(e: DragEvent): boolean {
  return !!e.dataTransfer && [...e.dataTransfer.types].includes("Files");
}

function Chat() {
  useTopics("ui", "channels", "guilds", "members");
  // dragDepth counts dragenter minus dragleave over the pane's children; > 0 shows the drop overlay.
  const [dragDepth, setDragDepth] = useState(0);
  const c = store.channels.get(ui.channelId);
  if (!c || (ui.guildId === HOME) !== isPrivate(c)) {
    return (
      <main class="chat" aria-label="Messages">
        <ChatHeader />
        <VideoTiles />
        <div class="empty-chat">
          <p class="muted">
            {ui.guildId === HOME
              ? store.privateChannels.length
                ? "Pick a conversation."
                : "No direct messages yet. Open a member's profile from a server's member list and choose Message."
              : store.guildOrder.length
                ? "Pick a channel."
                : "Create a server or join one with an invite to start chatting."}
          </p>
        </div>
      </main>
    );
  }
  const gid = c.guild_id;
  const canSend = can(gid, c.id, P.SEND_MESSAGES);
  const where = isPrivate(c) ? "@" + store.channelLabel(c) : "#" + c.name;
  return (
    <main
      class="chat"
      aria-label={where}
      onDragEnter={(e) => hasFiles(e) && canSend && (e.preventDefault(), setDragDepth((d) => d + 1))}
      onDragLeave={(e) => hasFiles(e) && setDragDepth((d) => Math.max(0, d - 1))}
      onDragOver={(e) => {
        if (!hasFiles(e) || !canSend) return;
        e.preventDefault();
        e.dataTransfer!.dropEffect = "copy";
      }}
      onDrop={(e) => {
        if (!hasFiles(e)) return;
        e.preventDefault();
        setDragDepth(0);
        attachHooks.add?.([...(e.dataTransfer?.files ?? [])]);
      }}
    >
      {dragDepth > 0 && (
        <div class="drop-overlay" aria-hidden="true">
          <p>Drop files to send them to {where}</p>
        </div>
      )}
      <ChatHeader />
      <VideoTiles />
      <ScreenShares />
      <MessageList key={c.id} channelId={c.id} canManage={can(gid, c.id, P.MANAGE_MESSAGES)} />
      <Typing channelId={c.id} />
      <Composer key={c.id} channelId={c.id} canSend={canSend} />
    </main>
  );
}

/** onGlobalKey implements the keyboard shortcuts: Ctrl+K switcher, Alt+Up/Down channels, Esc. */
function onGlobalKey(e: KeyboardEvent) {
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
    e.preventDefault();
    setUI({ dialog: ui.dialog?.kind === "switcher" ? null : { kind: "switcher" } });
  } else if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
    e.preventDefault();
    moveChannel(e.key === "ArrowUp" ? -1 : 1);
  } else if (e.key === "Escape") {
    if (ui.dialog) setUI({ dialog: null });
    else if (ui.searchResults) setUI({ searchResults: null });
    else if (ui.replyTo || ui.editing) setUI({ replyTo: null, editing: "" });
    else document.getElementById("composer-input")?.focus();
  }
}

/** App is the whole client: login screen or the four-column chat layout. */
export function App() {
  useTopics("me", "ui");
  useEffect(() => {
    window.addEventListener("keydown", onGlobalKey);
    return () => window.removeEventListener("keydown", onGlobalKey);
  }, []);
  useEffect(() => {
    // Opening /invite/CODE shows the join dialog once logged in.
    const m = /^\/invite\/([^/?#]+)/.exec(location.pathname);
    if (m && store.me && !ui.dialog) {
      sessionStorage.setItem("hearth.invite", location.href);
      history.replaceState(null, "", "/");
      setUI({ dialog: { kind: "join" } });
    }
  }, [!!store.me]);
  if (!api.token) return <Login />;
  if (!store.me) {
    return (
      <div class="splash" role="status">
        <Banner />
        <p>Connecting to {location.host}…</p>
      </div>
    );
  }
  return (
    <div class={"app pane-" + ui.pane + (ui.showMembers ? "" : " no-members")}>
      <a class="skip" href="#composer-input">
        Skip to message input
      </a>
      <Banner />
      <GuildRail />
      <nav class="sidebar" aria-label="Channels">
        <ChannelList />
        <VoicePanel />
        <UserPanel />
      </nav>
      <Chat />
      {ui.searchResults ? <SearchResults /> : ui.showMembers && <MemberList />}
      <Announcer />
      <Dialogs />
    </div>
  );
}

/** boot starts the session when a token is stored and records when the app started. */
export function boot() {
  perf.boot = performance.now();
  if (api.token) startSession();
}
