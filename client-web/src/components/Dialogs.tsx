import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, type Attachment, type Channel, type Guild, type Invite, type Message, type Role } from "../api";
import { store, useTopics } from "../store";
import { api, deleteMessage, fmtSize, jumpTo, logout, MAX_GROUP, openDM, openDMByName, openGroup, selectChannel, selectGuild, setTheme, setUI, ui } from "../session";
import { preview } from "../render";
import { Modal } from "./Modal";
import { Avatar, iconURL } from "./Avatar";
import { imageDataURI } from "../images";
import type { User } from "../api";
import { parseInvite } from "../invite";
import { QuickSwitcher } from "./QuickSwitcher";
import { VoiceSettings } from "./Voice";
import * as notify from "../notify";

const close = () => setUI({ dialog: null });

function errText(e: unknown): string {
  const a = e as ApiError;
  const f = Object.values(a.fields ?? {});
  return f.length ? f.join(" ") : a.message ?? String(e);
}

/** Form wraps a dialog form with an error line and a busy state. */
function Form(props: { onSubmit: () => Promise<void>; submit: string; children: ComponentChildren }) {
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <form
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        setErr("");
        try {
          await props.onSubmit();
        } catch (x) {
          setErr(errText(x));
        } finally {
          setBusy(false);
        }
      }}
    >
      {props.children}
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
      <div class="modal-actions">
        <button type="button" onClick={close}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {props.submit}
        </button>
      </div>
    </form>
  );
}

function CreateGuild() {
  const [name, setName] = useState(`${store.me?.username ?? "my"}'s server`);
  return (
    <Modal title="Create a server" onClose={close}>
      <Form
        submit="Create"
        onSubmit={async () => {
          const g = await api.post<Guild>("/guilds", { name: name.trim() });
          close();
          // GUILD_CREATE arrives on the gateway; select once it is there.
          const wait = (n: number) => (store.guilds.has(g.id) ? selectGuild(g.id) : n > 0 && setTimeout(() => wait(n - 1), 100));
          wait(50);
        }}
      >
        <label>
          Server name
          <input value={name} required minLength={2} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      </Form>
    </Modal>
  );
}

function JoinGuild() {
  const [link, setLink] = useState(() => {
    const v = sessionStorage.getItem("hearth.invite") ?? "";
    sessionStorage.removeItem("hearth.invite");
    return v;
  });
  const [target, setTarget] = useState<Invite | null>(null);
  const parsed = parseInvite(link);
  const remote = parsed && parsed.origin !== location.origin;
  useEffect(() => {
    setTarget(null);
    if (!parsed) return;
    const t = setTimeout(() => {
      api.get<Invite>(`/invites/${encodeURIComponent(parsed.code)}`).then(setTarget, () => setTarget(null));
    }, 250);
    return () => clearTimeout(t);
  }, [link]);
  return (
    <Modal title="Join a server" onClose={close}>
      <Form
        submit="Join"
        onSubmit={async () => {
          if (!parsed) throw new Error("Paste an invite link or code.");
          const inv = await api.post<Invite>(`/invites/${encodeURIComponent(parsed.code)}`, {});
          close();
          const gid = inv.guild?.id;
          const wait = (n: number) => (gid && store.guilds.has(gid) ? selectGuild(gid) : n > 0 && setTimeout(() => wait(n - 1), 100));
          wait(100);
        }}
      >
        <label>
          Invite link or code
          <input value={link} required placeholder="https://hearth.example/invite/hTKzmak" onInput={(e) => setLink(e.currentTarget.value)} />
        </label>
        {target?.guild && <p class="muted">You are invited to {target.guild.name}.</p>}
        {remote && <p class="muted">This invite is for a server on {new URL(parsed!.origin).host}; your node joins it for you.</p>}
      </Form>
    </Modal>
  );
}

function CreateChannel({ guildId, type, parentId }: { guildId: string; type: number; parentId?: string }) {
  const [name, setName] = useState("");
  const [kind, setKind] = useState(type);
  const cats = store.channelsOf(guildId).filter((c) => c.type === 4);
  const [parent, setParent] = useState(parentId ?? "");
  return (
    <Modal title="Create channel" onClose={close}>
      <Form
        submit="Create channel"
        onSubmit={async () => {
          const c = await api.post<Channel>(`/guilds/${guildId}/channels`, { name: name.trim(), type: kind, parent_id: parent || undefined });
          close();
          if (kind === 0) {
            const wait = (n: number) => (store.channels.has(c.id) ? selectChannel(c.id) : n > 0 && setTimeout(() => wait(n - 1), 100));
            wait(50);
          }
        }}
      >
        <fieldset>
          <legend>Channel type</legend>
          {[
            [0, "Text"],
            [2, "Voice"],
            [4, "Category"],
          ].map(([v, l]) => (
            <label class="radio" key={v}>
              <input type="radio" name="kind" checked={kind === v} onChange={() => setKind(v as number)} /> {l}
            </label>
          ))}
        </fieldset>
        <label>
          Channel name
          <input value={name} required maxLength={100} onInput={(e) => setName(e.currentTarget.value)} placeholder="new-channel" />
        </label>
        {kind !== 4 && (
          <label>
            Category
            <select value={parent} onChange={(e) => setParent(e.currentTarget.value)}>
              <option value="">No category</option>
              {cats.map((c) => (
                <option key={c.id} value={c.id}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
        )}
      </Form>
    </Modal>
  );
}

const ROLE_PERMS: Array<[string, bigint]> = [
  ["Administrator", 1n << 3n],
  ["Manage channels", 1n << 4n],
  ["Manage server", 1n << 5n],
  ["Manage roles", 1n << 28n],
  ["Manage messages", 1n << 13n],
  ["Kick members", 1n << 1n],
  ["Ban members", 1n << 2n],
  ["Mute members", 1n << 22n],
  ["Move members", 1n << 24n],
  ["Mention everyone", 1n << 17n],
];

function CreateRole({ guildId }: { guildId: string }) {
  useTopics("guilds", "members");
  const g = store.guilds.get(guildId);
  const [name, setName] = useState("");
  const [color, setColor] = useState("#3ba55c");
  const [hoist, setHoist] = useState(true);
  const [mentionable, setMentionable] = useState(true);
  const [perms, setPerms] = useState(0n);
  const [assign, setAssign] = useState<Record<string, boolean>>({});
  const members = [...(store.members.get(guildId)?.values() ?? [])];
  const roles = (g?.roles ?? []).filter((r) => r.id !== guildId).sort((a, b) => b.position - a.position);
  return (
    <Modal title="Roles" onClose={close} wide>
      {roles.length > 0 && (
        <ul class="role-list" aria-label="Existing roles">
          {roles.map((r) => (
            <li key={r.id}>
              <span class="role-dot" style={{ background: r.color ? "#" + r.color.toString(16).padStart(6, "0") : "var(--muted)" }} aria-hidden="true" />
              {r.name} <span class="muted">({members.filter((m) => m.roles.includes(r.id)).length} members)</span>
            </li>
          ))}
        </ul>
      )}
      <Form
        submit="Create role"
        onSubmit={async () => {
          const r = await api.post<Role>(`/guilds/${guildId}/roles`, {
            name: name.trim(),
            color: parseInt(color.slice(1), 16),
            hoist,
            mentionable,
            permissions: String(perms),
          });
          for (const [uid, on] of Object.entries(assign)) if (on) await api.put(`/guilds/${guildId}/members/${uid}/roles/${r.id}`);
          close();
        }}
      >
        <label>
          Role name
          <input value={name} required maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Colour
          <input type="color" value={color} onInput={(e) => setColor(e.currentTarget.value)} />
        </label>
        <label class="check">
          <input type="checkbox" checked={hoist} onChange={(e) => setHoist(e.currentTarget.checked)} /> Show members separately in the member list
        </label>
        <label class="check">
          <input type="checkbox" checked={mentionable} onChange={(e) => setMentionable(e.currentTarget.checked)} /> Anyone can @mention this role
        </label>
        <fieldset>
          <legend>Permissions</legend>
          {ROLE_PERMS.map(([l, bit]) => (
            <label class="check" key={l}>
              <input type="checkbox" checked={(perms & bit) !== 0n} onChange={(e) => setPerms(e.currentTarget.checked ? perms | bit : perms & ~bit)} /> {l}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Give this role to</legend>
          {members.map((m) => (
            <label class="check" key={m.user.id}>
              <input type="checkbox" checked={!!assign[m.user.id]} onChange={(e) => setAssign({ ...assign, [m.user.id]: e.currentTarget.checked })} />{" "}
              {store.displayName(m.user.id, guildId)}
            </label>
          ))}
        </fieldset>
      </Form>
    </Modal>
  );
}

function InviteDialog({ channelId }: { channelId: string }) {
  const [inv, setInv] = useState<Invite | null>(null);
  const [err, setErr] = useState("");
  const [copied, setCopied] = useState(false);
  const [maxAge, setMaxAge] = useState(86400);
  const make = async (age: number) => {
    setErr("");
    try {
      setInv(await api.post<Invite>(`/channels/${channelId}/invites`, { max_age: age, max_uses: 0 }));
    } catch (e) {
      setErr(errText(e));
    }
  };
  useEffect(() => {
    void make(maxAge);
  }, [maxAge]);
  const link = inv ? `${location.origin}/invite/${encodeURIComponent(inv.code)}` : "";
  return (
    <Modal title={`Invite friends to ${store.guilds.get(store.channels.get(channelId)?.guild_id ?? "")?.name ?? "the server"}`} onClose={close}>
      <label>
        Invite link
        <input readOnly value={link} id="invite-link" onFocus={(e) => e.currentTarget.select()} />
      </label>
      <button
        type="button"
        class="primary"
        disabled={!inv}
        onClick={() => {
          navigator.clipboard?.writeText(link).then(() => setCopied(true), () => setCopied(false));
        }}
      >
        {copied ? "Copied" : "Copy link"}
      </button>
      <label>
        Expire after
        <select value={maxAge} onChange={(e) => setMaxAge(Number(e.currentTarget.value))}>
          <option value={3600}>1 hour</option>
          <option value={86400}>1 day</option>
          <option value={604800}>7 days</option>
          <option value={0}>Never</option>
        </select>
      </label>
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
    </Modal>
  );
}

/** ImageField chooses, replaces or removes an avatar or a guild icon: the file is shrunk and sent
 * as a data URI by save (null removes it). what names the image in labels ("avatar", "icon"). */
function ImageField(props: { what: string; has: boolean; preview: ComponentChildren; save: (v: string | null) => Promise<void> }) {
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState("");
  const run = async (label: string, f: () => Promise<string | null>) => {
    setErr("");
    setBusy(label);
    try {
      await props.save(await f());
    } catch (x) {
      setErr(x instanceof ApiError ? errText(x) : (x as Error).message);
    } finally {
      setBusy("");
    }
  };
  const input = useRef<HTMLInputElement>(null);
  return (
    <div class="image-field">
      {props.preview}
      <div class="image-field-actions">
        <input
          ref={input}
          type="file"
          class="sr-only"
          tabIndex={-1}
          aria-label={`${props.what} image file`}
          accept="image/png,image/jpeg,image/gif,image/webp"
          onChange={(e) => {
            const f = e.currentTarget.files?.[0];
            e.currentTarget.value = "";
            if (f) void run(`Uploading ${props.what}…`, () => imageDataURI(f));
          }}
        />
        <button type="button" class="primary" disabled={!!busy} onClick={() => input.current?.click()}>
          {props.has ? `Change ${props.what}` : `Upload ${props.what}`}
        </button>
        {props.has && (
          <button type="button" disabled={!!busy} onClick={() => void run(`Removing ${props.what}…`, async () => null)}>
            Remove {props.what}
          </button>
        )}
        <span role="status" class="muted">
          {busy}
        </span>
      </div>
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
    </div>
  );
}

/** ProfileSettings sets the user's avatar and display name (PATCH /users/@me). */
function ProfileSettings() {
  const me = store.me;
  const [gname, setGname] = useState(me?.global_name ?? "");
  const [saved, setSaved] = useState("");
  const [err, setErr] = useState("");
  if (!me) return null;
  const patch = async (body: Record<string, unknown>) => {
    const u = await api.patch<User>("/users/@me", body);
    store.apply("USER_UPDATE", u);
  };
  return (
    <section aria-labelledby="set-profile">
      <h3 id="set-profile">Profile</h3>
      <ImageField
        what="avatar"
        has={!!me.avatar}
        preview={<Avatar uid={me.id} name={me.global_name || me.username} hint={me} class="big" />}
        save={(v) => patch({ avatar: v })}
      />
      <form
        class="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          setErr("");
          setSaved("");
          try {
            await patch({ global_name: gname.trim() || null });
            setSaved("Saved");
          } catch (x) {
            setErr(errText(x));
          }
        }}
      >
        <label>
          Display name
          <input value={gname} maxLength={32} placeholder={me.username} onInput={(e) => setGname(e.currentTarget.value)} />
        </label>
        <button type="submit">Save display name</button>
        <span role="status" class="muted">
          {saved}
        </span>
      </form>
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
    </section>
  );
}

/** GuildSettings renames a guild and sets its icon (PATCH /guilds/{id}, MANAGE_GUILD). */
function GuildSettings({ guildId }: { guildId: string }) {
  useTopics("guilds");
  const g = store.guilds.get(guildId);
  const [name, setName] = useState(g?.name ?? "");
  if (!g) return null;
  const icon = iconURL(g.id);
  const patch = async (body: Record<string, unknown>) => {
    const ng = await api.patch<Guild>(`/guilds/${g.id}`, body);
    store.apply("GUILD_UPDATE", ng);
  };
  return (
    <Modal title="Server settings" onClose={close}>
      <h3>Icon</h3>
      <ImageField
        what="icon"
        has={!!g.icon}
        preview={
          <span class={"guild-icon big" + (icon ? " has-img" : "")} aria-hidden="true">
            {icon ? <img src={icon} alt="" /> : g.name.slice(0, 1).toUpperCase()}
          </span>
        }
        save={(v) => patch({ icon: v })}
      />
      <Form
        submit="Save"
        onSubmit={async () => {
          await patch({ name: name.trim() });
          close();
        }}
      >
        <label>
          Server name
          <input value={name} required minLength={2} maxLength={100} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
      </Form>
    </Modal>
  );
}

/** NotificationSettings asks the browser for desktop notifications (it asks only in answer to a
 * click) and turns them on and off. */
function NotificationSettings() {
  useTopics("notify");
  const perm = notify.permission();
  return (
    <section aria-labelledby="set-notify">
      <h3 id="set-notify">Notifications</h3>
      {!notify.supported() ? (
        <p class="muted">This browser cannot show desktop notifications.</p>
      ) : perm === "denied" ? (
        <p class="muted">Desktop notifications are blocked in this browser's settings for this site.</p>
      ) : perm === "default" ? (
        <button type="button" onClick={() => void notify.setEnabled(true)}>
          Enable desktop notifications
        </button>
      ) : (
        <label class="check">
          <input type="checkbox" checked={notify.enabled()} onChange={(e) => void notify.setEnabled(e.currentTarget.checked)} /> Desktop notifications
          for mentions and direct messages while Hearth is in the background
        </label>
      )}
    </section>
  );
}

function Settings() {
  useTopics("ui", "me");
  return (
    <Modal title="Settings" onClose={close} wide>
      <ProfileSettings />
      <section aria-labelledby="set-appearance">
        <h3 id="set-appearance">Appearance</h3>
        <fieldset>
          <legend>Theme</legend>
          {(["dark", "light"] as const).map((t) => (
            <label class="radio" key={t}>
              <input type="radio" name="theme" checked={ui.theme === t} onChange={() => setTheme(t)} /> {t === "dark" ? "Dark" : "Light"}
            </label>
          ))}
        </fieldset>
      </section>
      <VoiceSettings />
      <NotificationSettings />
      <section aria-labelledby="set-account">
        <h3 id="set-account">Account</h3>
        <p>
          Logged in as <strong>{store.me?.username}</strong>
        </p>
        <button type="button" class="danger" onClick={() => void logout()}>
          Log out
        </button>
      </section>
    </Modal>
  );
}

function Pins({ channelId }: { channelId: string }) {
  const [pins, setPins] = useState<Message[] | null>(null);
  useEffect(() => {
    api.get<Message[]>(`/channels/${channelId}/pins`).then(setPins, () => setPins([]));
  }, [channelId]);
  const gid = store.channels.get(channelId)?.guild_id;
  return (
    <Modal title="Pinned messages" onClose={close}>
      {pins === null && <p role="status">Loading…</p>}
      {pins?.length === 0 && <p class="muted">No pinned messages in this channel yet.</p>}
      <ul class="result-list">
        {pins?.map((m) => (
          <li key={m.id}>
            <button type="button" class="result" onClick={() => (close(), void jumpTo(channelId, m.id))}>
              <strong>{store.displayName(m.author.id, gid)}</strong> <span>{preview(m.content, gid, 200)}</span>
            </button>
          </li>
        ))}
      </ul>
    </Modal>
  );
}

function ConfirmDelete({ message }: { message: Message }) {
  return (
    <Modal title="Delete message" onClose={close}>
      <p>Are you sure you want to delete this message?</p>
      <blockquote class="muted">{message.content.slice(0, 300)}</blockquote>
      <Form
        submit="Delete"
        onSubmit={async () => {
          await deleteMessage(message);
          close();
        }}
      >
        {null}
      </Form>
    </Modal>
  );
}

const STATUS_TEXT: Record<string, string> = { online: "Online", idle: "Idle", dnd: "Do not disturb", offline: "Offline" };

/** Profile shows a user (from the member list): names, status, roles, and a button that opens a DM. */
function Profile({ userId, guildId }: { userId: string; guildId?: string }) {
  useTopics("members", "guilds");
  const [err, setErr] = useState("");
  const [busy, setBusy] = useState(false);
  const u = store.users.get(userId);
  const name = store.displayName(userId, guildId);
  const st = store.presence.get(userId) ?? "offline";
  const g = guildId ? store.guilds.get(guildId) : undefined;
  const m = guildId ? store.members.get(guildId)?.get(userId) : undefined;
  const roles = (g?.roles ?? []).filter((r) => m?.roles.includes(r.id)).sort((a, b) => b.position - a.position);
  const me = userId === store.me?.id;
  return (
    <Modal title={name} onClose={close}>
      <div class="profile">
        <Avatar uid={userId} name={name} class="big">
          <span class={"status-dot " + st} />
        </Avatar>
        <div>
          <p class="profile-user">{u?.username}</p>
          <p class="muted">{STATUS_TEXT[st] ?? st}</p>
        </div>
      </div>
      {roles.length > 0 && (
        <ul class="role-list" aria-label="Roles">
          {roles.map((r) => (
            <li key={r.id}>
              <span class="role-dot" style={{ background: r.color ? "#" + r.color.toString(16).padStart(6, "0") : "var(--muted)" }} aria-hidden="true" />
              {r.name}
            </li>
          ))}
        </ul>
      )}
      {err && (
        <p class="error" role="alert">
          {err}
        </p>
      )}
      <div class="modal-actions">
        <button type="button" onClick={close}>
          Close
        </button>
        {!me && (
          <button
            type="button"
            class="primary"
            disabled={busy}
            autofocus
            onClick={async () => {
              setBusy(true);
              setErr("");
              try {
                await openDM(userId);
                close();
              } catch (e) {
                setErr(errText(e));
              } finally {
                setBusy(false);
              }
            }}
          >
            Message
          </button>
        )}
      </div>
    </Modal>
  );
}

/** NewDM opens a DM by username: someone on this node, or `name@node` on another node, whom
 * the user need not share a server with (the other node decides whether to accept strangers). */
function NewDM() {
  const [name, setName] = useState("");
  return (
    <Modal title="Message someone" onClose={close}>
      <Form
        submit="Message"
        onSubmit={async () => {
          const n = name.trim();
          if (!n) throw new Error("Enter a username.");
          await openDMByName(n);
          close();
        }}
      >
        <label>
          Username
          <input value={name} required autofocus placeholder="name@node" autocomplete="off" spellcheck={false} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <p class="muted small">Someone on another node: their name, then @ and their node's name or address.</p>
      </Form>
    </Modal>
  );
}

/** NewGroup picks people who share a server with the user for a group DM (or a DM with one).
 * Members of other nodes are left out: a conversation across nodes has two members. */
function NewGroup() {
  const [q, setQ] = useState("");
  const [picked, setPicked] = useState<string[]>([]);
  const people = new Map<string, string>();
  for (const mm of store.members.values()) {
    for (const m of mm.values()) {
      if (m.user.id === store.me?.id || m.user.username.includes("@")) continue;
      people.set(m.user.id, store.displayName(m.user.id));
    }
  }
  const needle = q.trim().toLowerCase();
  const shown = [...people.entries()].filter(([, n]) => !needle || n.toLowerCase().includes(needle)).sort((a, b) => a[1].localeCompare(b[1]));
  const full = picked.length >= MAX_GROUP - 1;
  return (
    <Modal title="Create a group DM" onClose={close}>
      <Form
        submit={picked.length > 1 ? "Create group DM" : "Open DM"}
        onSubmit={async () => {
          if (!picked.length) throw new Error("Pick at least one person.");
          await openGroup(picked);
          close();
        }}
      >
        <label>
          Find people
          <input value={q} onInput={(e) => setQ(e.currentTarget.value)} placeholder="Name" />
        </label>
        <p class="muted small" aria-live="polite">
          {picked.length} of at most {MAX_GROUP - 1} picked
        </p>
        <fieldset class="people">
          <legend>People who share a server with you</legend>
          {shown.length === 0 && <p class="muted small">Nobody to add.</p>}
          {shown.map(([id, name]) => (
            <label class="check" key={id}>
              <input
                type="checkbox"
                checked={picked.includes(id)}
                disabled={full && !picked.includes(id)}
                onChange={(e) => setPicked(e.currentTarget.checked ? [...picked, id] : picked.filter((x) => x !== id))}
              />{" "}
              {name}
            </label>
          ))}
        </fieldset>
      </Form>
    </Modal>
  );
}

/** ImageViewer shows an image attachment at full size (the original, not the thumbnail). */
function ImageViewer({ a }: { a: Attachment }) {
  return (
    <Modal title={a.filename} onClose={close} wide>
      <img class="full-image" src={a.url} alt={a.filename} width={a.width} height={a.height} />
      <p class="muted small">
        {a.width}×{a.height} · {fmtSize(a.size)} ·{" "}
        <a href={a.url} target="_blank" rel="noopener noreferrer">
          Open original
        </a>{" "}
        ·{" "}
        <a href={a.url} download={a.filename}>
          Download
        </a>
      </p>
    </Modal>
  );
}

/** Dialogs shows the open dialog, if any. */
export function Dialogs() {
  useTopics("ui");
  const d = ui.dialog;
  if (!d) return null;
  switch (d.kind) {
    case "create-guild":
      return <CreateGuild />;
    case "join":
      return <JoinGuild />;
    case "create-channel":
      return <CreateChannel guildId={d.guildId} type={d.type} parentId={d.parentId} />;
    case "create-role":
      return <CreateRole guildId={d.guildId} />;
    case "invite":
      return <InviteDialog channelId={d.channelId} />;
    case "settings":
      return <Settings />;
    case "switcher":
      return <QuickSwitcher />;
    case "pins":
      return <Pins channelId={d.channelId} />;
    case "confirm-delete":
      return <ConfirmDelete message={d.message} />;
    case "profile":
      return <Profile userId={d.userId} guildId={d.guildId} />;
    case "image":
      return <ImageViewer a={d.attachment} />;
    case "new-group":
      return <NewGroup />;
    case "new-dm":
      return <NewDM />;
    case "guild-settings":
      return <GuildSettings guildId={d.guildId} />;
  }
}
