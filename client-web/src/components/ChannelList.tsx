import { useState } from "preact/hooks";
import { Icon } from "../icons";
import type { Channel } from "../api";
import { HOME, store, useTopics } from "../store";
import { selectChannel, setUI, ui } from "../session";
import { joinVoice, voice } from "../voice";
import { can, P } from "../perms";
import { Avatar } from "./Avatar";

function TextChannel({ c }: { c: Channel }) {
  const unread = store.unread(c.id);
  const mentions = store.mentions(c.id);
  const active = c.id === ui.channelId;
  const label = `${c.name}${mentions ? `, ${mentions} mention${mentions > 1 ? "s" : ""}` : unread ? ", unread" : ""}`;
  return (
    <li class={"chan" + (active ? " active" : "") + (unread ? " unread" : "")}>
      <button type="button" aria-label={label} aria-current={active ? "page" : undefined} onClick={() => selectChannel(c.id)}>
        <span class="hash">
          <Icon name="hash" />
        </span>
        <span class="chan-name">{c.name}</span>
        {mentions > 0 && (
          <span class="badge" aria-hidden="true">
            {mentions}
          </span>
        )}
      </button>
    </li>
  );
}

function VoiceChannel({ c }: { c: Channel }) {
  const states = [...(store.voice.get(c.guild_id!)?.values() ?? [])].filter((v) => v.channel_id === c.id);
  const here = voice.channelId === c.id;
  return (
    <li class={"chan voice" + (here ? " active" : "")}>
      <button type="button" aria-label={`${c.name}, voice channel, ${states.length} connected${here ? ", you are connected" : ""}`} onClick={() => joinVoice(c.guild_id!, c.id)}>
        <span class="hash">
          <Icon name="speaker" />
        </span>
        <span class="chan-name">{c.name}</span>
      </button>
      {states.length > 0 && (
        <ul class="voice-users" aria-label={`Connected to ${c.name}`}>
          {states.map((v) => {
            const speaking = voice.speaking.has(v.user_id);
            return (
              <li key={v.user_id} class={speaking ? "speaking" : ""}>
                <Avatar uid={v.user_id} name={store.displayName(v.user_id, c.guild_id)} class="small" />
                <span>{store.displayName(v.user_id, c.guild_id)}</span>
                {speaking && <span class="sr-only">, speaking</span>}
                {(v.self_mute || v.mute) && <span class="vstate" title="Muted"><Icon name="micOff" size={14} /><span class="sr-only">, muted</span></span>}
                {(v.self_deaf || v.deaf) && <span class="vstate" title="Deafened"><Icon name="deafened" size={14} /><span class="sr-only">, deafened</span></span>}
                {v.self_video && <span class="vstate" title="Camera on"><Icon name="camera" size={14} /><span class="sr-only">, camera on</span></span>}
                {v.self_stream && <span class="live" aria-label="sharing screen">LIVE</span>}
              </li>
            );
          })}
        </ul>
      )}
    </li>
  );
}

/** DMList is the Home view's sidebar: the user's direct messages, most recent first, with unread counts. */
function DMList() {
  const dms = store.dms();
  return (
    <div class="channels">
      <div class="guild-head">
        <h2>Direct Messages</h2>
        <button type="button" class="icon" aria-label="Message someone by username" title="Message someone by username" onClick={() => setUI({ dialog: { kind: "new-dm" } })}>
          <Icon name="at" />
        </button>
        <button type="button" class="icon" aria-label="Create a group DM" title="Create a group DM" onClick={() => setUI({ dialog: { kind: "new-group" } })}>
          <Icon name="plus" />
        </button>
      </div>
      <div class="chan-scroll">
        {dms.length === 0 && <p class="muted small dm-empty">No direct messages yet. Open a member's profile in a server's member list and choose Message, or message someone on any node by username (@).</p>}
        <ul role="list" class="chan-list" aria-label="Direct messages">
          {dms.map((c) => {
            const peers = store.dmPeers(c);
            const name = store.channelLabel(c);
            const n = store.dmUnread(c.id);
            const active = c.id === ui.channelId;
            const st = peers.length === 1 ? store.presence.get(peers[0]) ?? "offline" : "";
            const label = `${name}${st ? ", " + (st === "dnd" ? "do not disturb" : st) : ""}${n ? `, ${n} unread` : ""}`;
            return (
              <li key={c.id} class={"chan dm" + (active ? " active" : "") + (n ? " unread" : "")}>
                <button type="button" aria-label={label} aria-current={active ? "page" : undefined} onClick={() => selectChannel(c.id)}>
                  <Avatar uid={peers.length === 1 ? peers[0] : ""} name={name} class="small">
                    {st && <span class={"status-dot " + st} />}
                  </Avatar>
                  <span class="chan-name">{name}</span>
                  {n > 0 && (
                    <span class="badge" aria-hidden="true">
                      {n > 99 ? "99+" : n}
                    </span>
                  )}
                </button>
              </li>
            );
          })}
        </ul>
      </div>
    </div>
  );
}

/** ChannelList shows the selected guild's channels grouped by category, with unread and mention
 * badges, or the direct messages in the Home view. */
export function ChannelList() {
  useTopics("channels", "reads", "ui", "voice", "guilds", "members");
  const [collapsed, setCollapsed] = useState<Record<string, boolean>>({});
  if (ui.guildId === HOME) return <DMList />;
  const g = store.guilds.get(ui.guildId);
  if (!g) {
    return (
      <div class="channels empty">
        <p class="muted">Create a server or join one with an invite to start.</p>
      </div>
    );
  }
  const all = store.channelsOf(g.id);
  const cats = all.filter((c) => c.type === 4);
  const item = (c: Channel) => (c.type === 2 ? <VoiceChannel key={c.id} c={c} /> : c.type === 0 ? <TextChannel key={c.id} c={c} /> : null);
  // As on Discord, text channels come before voice channels within a category (and outside any).
  const textFirst = (a: Channel, b: Channel) => (a.type === 2 ? 1 : 0) - (b.type === 2 ? 1 : 0);
  const loose = all.filter((c) => c.type !== 4 && !c.parent_id).sort(textFirst);
  return (
    <div class="channels">
      <div class="guild-head">
        <h2>{g.name}</h2>
        <button type="button" class="icon" aria-label="Invite people" title="Invite people" onClick={() => {
          const first = all.find((c) => c.type === 0);
          if (first) setUI({ dialog: { kind: "invite", channelId: ui.channelId || first.id } });
        }}>
          <Icon name="userPlus" />
        </button>
        <button type="button" class="icon" aria-label="Create role" title="Create role" onClick={() => setUI({ dialog: { kind: "create-role", guildId: g.id } })}>
          <Icon name="shield" />
        </button>
        {can(g.id, "", P.MANAGE_GUILD) && (
          <button type="button" class="icon" aria-label="Server settings" title="Server settings" onClick={() => setUI({ dialog: { kind: "guild-settings", guildId: g.id } })}>
            <Icon name="gear" />
          </button>
        )}
      </div>
      <div class="chan-scroll">
        <ul role="list" class="chan-list">
          {loose.map(item)}
        </ul>
        {cats.map((cat) => {
          const kids = all.filter((c) => c.parent_id === cat.id).sort(textFirst);
          const open = !collapsed[cat.id];
          return (
            <section key={cat.id} class="category" aria-label={cat.name}>
              <div class="cat-head">
                <button type="button" class="cat-toggle" aria-expanded={open} onClick={() => setCollapsed({ ...collapsed, [cat.id]: open })}>
                  <span aria-hidden="true">{open ? "▾" : "▸"}</span> {cat.name}
                </button>
                <button
                  type="button"
                  class="icon"
                  aria-label={`Create channel in ${cat.name}`}
                  title="Create channel"
                  onClick={() => setUI({ dialog: { kind: "create-channel", guildId: g.id, type: kids.some((k) => k.type === 2) ? 2 : 0, parentId: cat.id } })}
                >
                  <Icon name="plus" size={16} />
                </button>
              </div>
              {open && (
                <ul role="list" class="chan-list">
                  {kids.map(item)}
                </ul>
              )}
              {!open && (
                <ul role="list" class="chan-list">
                  {kids.filter((c) => c.id === ui.channelId || store.unread(c.id)).map(item)}
                </ul>
              )}
            </section>
          );
        })}
      </div>
    </div>
  );
}
