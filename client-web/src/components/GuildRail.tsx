import { useState } from "preact/hooks";
import { HOME, store, useTopics } from "../store";
import { Icon } from "../icons";
import { iconURL } from "./Avatar";
import { selectGuild, selectHome, setUI, ui } from "../session";

/** initials gives a guild's short label for its icon. */
export function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 3)
    .map((w) => [...w][0])
    .join("")
    .toUpperCase();
}

/** GuildRail lists the user's guilds with unread dots and mention counts, plus create and join. */
export function GuildRail() {
  useTopics("guilds", "reads", "channels", "ui");
  const dms = store.homeUnread();
  const home = ui.guildId === HOME;
  return (
    <nav class="rail" aria-label="Servers">
      <ul role="list">
        <li class={"rail-item" + (home ? " active" : "") + (dms ? " unread" : "")}>
          <button
            type="button"
            class="guild-icon home"
            aria-label={"Direct messages" + (dms ? `, ${dms} unread` : "")}
            aria-current={home ? "page" : undefined}
            title="Direct messages"
            onClick={selectHome}
          >
            <Icon name="chat" size={24} />
          </button>
          {dms > 0 && (
            <span class="badge" aria-hidden="true">
              {dms > 99 ? "99+" : dms}
            </span>
          )}
        </li>
        <li class="rail-sep" aria-hidden="true" />
        {store.guildOrder.map((gid) => {
          const g = store.guilds.get(gid);
          if (!g) return null;
          const { unread, mentions } = store.guildUnread(gid);
          const icon = iconURL(gid);
          const label =
            g.name + (mentions ? `, ${mentions} mention${mentions > 1 ? "s" : ""}` : unread ? ", unread messages" : "");
          return (
            <li key={gid} class={"rail-item" + (gid === ui.guildId ? " active" : "") + (unread ? " unread" : "")}>
              <button
                type="button"
                class={"guild-icon" + (icon ? " has-img" : "")}
                aria-label={label}
                aria-current={gid === ui.guildId ? "page" : undefined}
                title={g.name}
                onClick={() => selectGuild(gid)}
              >
                {icon ? <GuildIcon url={icon} name={g.name} /> : initials(g.name)}
              </button>
              {mentions > 0 && (
                <span class="badge" aria-hidden="true">
                  {mentions > 99 ? "99+" : mentions}
                </span>
              )}
            </li>
          );
        })}
        <li class="rail-item">
          <button type="button" class="guild-icon add" aria-label="Create a server" title="Create a server" onClick={() => setUI({ dialog: { kind: "create-guild" } })}>
            <Icon name="plus" size={24} />
          </button>
        </li>
        <li class="rail-item">
          <button type="button" class="guild-icon add" aria-label="Join a server with an invite" title="Join a server" onClick={() => setUI({ dialog: { kind: "join" } })}>
            <Icon name="join" size={22} />
          </button>
        </li>
      </ul>
    </nav>
  );
}

/** GuildIcon is a guild's icon image in the rail, or its initials when the image does not load. */
function GuildIcon({ url, name }: { url: string; name: string }) {
  const [failed, setFailed] = useState("");
  if (failed === url) return <>{initials(name)}</>;
  return <img src={url} alt="" draggable={false} data-icon="image" onError={() => setFailed(url)} />;
}
