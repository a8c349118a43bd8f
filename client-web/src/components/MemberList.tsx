import type { Member, Role } from "../api";
import { Icon } from "../icons";
import { store, useTopics } from "../store";
import { ui } from "../session";
import { readable } from "../color";

const STATUS_LABEL: Record<string, string> = { online: "online", idle: "idle", dnd: "do not disturb", offline: "offline" };

/** MemberList groups members by their highest hoisted role, then online and offline, with live presence. */
export function MemberList() {
  useTopics("members", "guilds", "ui");
  const gid = ui.guildId;
  const g = store.guilds.get(gid);
  if (!g) return null;
  const members = [...(store.members.get(gid)?.values() ?? [])];
  const hoisted = g.roles.filter((r) => r.hoist && r.id !== gid).sort((a, b) => b.position - a.position);
  const groups = new Map<string, { title: string; list: Member[] }>();
  for (const r of hoisted) groups.set(r.id, { title: r.name, list: [] });
  groups.set("online", { title: "Online", list: [] });
  groups.set("offline", { title: "Offline", list: [] });
  for (const m of members) {
    const st = store.presence.get(m.user.id) ?? "offline";
    if (st === "offline") {
      groups.get("offline")!.list.push(m);
      continue;
    }
    const top: Role | undefined = hoisted.find((r) => m.roles.includes(r.id));
    groups.get(top ? top.id : "online")!.list.push(m);
  }
  const byName = (a: Member, b: Member) => store.displayName(a.user.id, gid).localeCompare(store.displayName(b.user.id, gid));
  return (
    <aside class="members" aria-label="Members">
      {[...groups.entries()].map(([k, grp]) =>
        grp.list.length === 0 ? null : (
          <section key={k} aria-label={`${grp.title}, ${grp.list.length}`}>
            <h3 class="member-group">
              {grp.title} — {grp.list.length}
            </h3>
            <ul role="list">
              {grp.list.sort(byName).map((m) => {
                const st = store.presence.get(m.user.id) ?? "offline";
                const color = store.roleColor(m.user.id, gid);
                const name = store.displayName(m.user.id, gid);
                return (
                  <li key={m.user.id} class={"member " + st} aria-label={`${name}, ${STATUS_LABEL[st] ?? st}`} data-user={m.user.username}>
                    <span class="avatar" aria-hidden="true">
                      {name.slice(0, 1).toUpperCase()}
                      <span class={"status-dot " + st} />
                    </span>
                    <span class="member-name" style={{ color: readable(color, ui.theme) }}>
                      {name}
                    </span>
                    {g.owner_id === m.user.id && (
                      <span class="owner" title="Server owner">
                        <Icon name="crown" size={14} />
                      </span>
                    )}
                  </li>
                );
              })}
            </ul>
          </section>
        ),
      )}
    </aside>
  );
}
