import type { Member, Role } from "../api";
import { Icon } from "../icons";
import { isPrivate, store, useTopics } from "../store";
import { setUI, ui } from "../session";
import { readable } from "../color";
import { Avatar } from "./Avatar";

const STATUS_LABEL: Record<string, string> = { online: "online", idle: "idle", dnd: "do not disturb", offline: "offline" };

/** Recipients is the member list of a DM or group DM: its recipients with live presence. */
function Recipients({ ids }: { ids: string[] }) {
  return (
    <aside class="members" aria-label="Members">
      <h3 class="member-group">Members — {ids.length}</h3>
      <ul role="list">
        {ids.map((id) => {
          const st = store.presence.get(id) ?? "offline";
          const name = store.displayName(id);
          return (
            <li key={id} class={"member " + st} data-user={store.users.get(id)?.username}>
              <button type="button" class="member-btn" aria-label={`${name}, ${STATUS_LABEL[st] ?? st}`} onClick={() => setUI({ dialog: { kind: "profile", userId: id } })}>
                <Avatar uid={id} name={name}>
                  <span class={"status-dot " + st} />
                </Avatar>
                <span class="member-name">{name}</span>
              </button>
            </li>
          );
        })}
      </ul>
    </aside>
  );
}

/** MemberList groups members by their highest hoisted role, then online and offline, with live
 * presence; a member opens their profile (and from it a DM). In a DM it lists the recipients. */
export function MemberList() {
  useTopics("members", "guilds", "ui", "channels");
  const gid = ui.guildId;
  const g = store.guilds.get(gid);
  const c = store.channels.get(ui.channelId);
  if (isPrivate(c)) return <Recipients ids={(c!.recipients ?? []).map((u) => u.id)} />;
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
                  <li key={m.user.id} class={"member " + st} data-user={m.user.username}>
                    <button
                      type="button"
                      class="member-btn"
                      aria-label={`${name}, ${STATUS_LABEL[st] ?? st}${g.owner_id === m.user.id ? ", server owner" : ""}`}
                      aria-haspopup="dialog"
                      onClick={() => setUI({ dialog: { kind: "profile", userId: m.user.id, guildId: gid } })}
                    >
                      <Avatar uid={m.user.id} name={name} hint={m.user}>
                        <span class={"status-dot " + st} />
                      </Avatar>
                      <span class="member-name" style={{ color: readable(color, ui.theme) }}>
                        {name}
                      </span>
                      {g.owner_id === m.user.id && (
                        <span class="owner" title="Server owner">
                          <Icon name="crown" size={14} />
                        </span>
                      )}
                    </button>
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
