import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "../icons";
import { byName, EMOJI } from "../emoji";
import type { User } from "../api";
import { isPrivate, store, useTopics } from "../store";
import { shrinkable, shrinkImage, SHRINK_MAX } from "../images";
import { fmtSize, MAX_FILES, resetTypingThrottle, sendMessage, setUI, typing, ui } from "../session";

/** attachHooks lets the chat pane hand dropped files to the composer (drag-and-drop anywhere on it). */
export const attachHooks: { add: ((files: File[]) => void) | null } = { add: null };

/** FileChip shows one file waiting to be sent: an image preview or a file icon, name, size, remove. */
function FileChip({ f, onRemove }: { f: File; onRemove: () => void }) {
  const [src, setSrc] = useState("");
  useEffect(() => {
    if (!f.type.startsWith("image/")) return;
    const u = URL.createObjectURL(f);
    setSrc(u);
    return () => URL.revokeObjectURL(u);
  }, [f]);
  return (
    <li class="file-chip">
      {src ? <img src={src} alt="" /> : <Icon name="file" size={28} />}
      <span class="file-chip-name">{f.name}</span>
      <span class="muted small">{fmtSize(f.size)}</span>
      <button type="button" class="icon" aria-label={`Remove ${f.name}`} onClick={onRemove}>
        <Icon name="close" size={16} />
      </button>
    </li>
  );
}

interface Suggestion {
  label: string;
  detail: string;
  insert: string;
}

/** suggest returns autocomplete choices for the word being typed before the caret. */
function suggest(text: string, caret: number, gid: string | undefined, people: Person[]): { from: number; items: Suggestion[] } | null {
  const before = text.slice(0, caret);
  const m = /(^|\s)([@#:])([\w.@-]*)$/.exec(before);
  if (!m) return null;
  const sigil = m[2];
  const q = m[3].toLowerCase();
  const from = caret - m[3].length - 1;
  let items: Suggestion[] = [];
  if (sigil === "@") {
    items = people
      .filter((x) => x.user.username.toLowerCase().startsWith(q) || (x.nick ?? x.user.global_name ?? "").toLowerCase().startsWith(q))
      .slice(0, 8)
      .map((x) => ({ label: store.displayName(x.user.id, gid), detail: x.user.username, insert: "@" + x.user.username + " " }));
    for (const s of ["everyone", "here"]) if (s.startsWith(q)) items.push({ label: "@" + s, detail: "notify everyone", insert: "@" + s + " " });
    const roles = gid ? store.guilds.get(gid)?.roles ?? [] : [];
    for (const r of roles) if (r.id !== gid && r.name.toLowerCase().startsWith(q)) items.push({ label: "@" + r.name, detail: "role", insert: "@" + r.name + " " });
  } else if (sigil === "#") {
    items = (gid ? store.channelsOf(gid) : [])
      .filter((c) => c.type === 0 && c.name!.startsWith(q))
      .slice(0, 8)
      .map((c) => ({ label: "#" + c.name, detail: "channel", insert: "#" + c.name + " " }));
  } else if (q.length >= 2) {
    items = EMOJI.filter(([n]) => n.startsWith(q))
      .slice(0, 8)
      .map(([n, e]) => ({ label: e + " :" + n + ":", detail: "emoji", insert: e }));
  }
  return items.length ? { from, items } : null;
}

/** Person is someone who can be mentioned: a guild member, or a DM's recipient. */
type Person = { user: User; nick?: string | null };

/** mentionable lists who can be mentioned in a channel: the guild's members, or a DM's recipients. */
function mentionable(cid: string): Person[] {
  const c = store.channels.get(cid);
  if (c?.guild_id) return [...(store.members.get(c.guild_id)?.values() ?? [])];
  return (c?.recipients ?? []).map((u) => ({ user: store.users.get(u.id) ?? u }));
}

/** encode turns the friendly "@username", "#channel" and ":emoji:" forms into Discord's wire
 * syntax; people are who "@username" may name. */
export function encode(text: string, gid: string | undefined, people: Person[]): string {
  // Leave code spans and blocks as typed.
  return text
    .split(/(```[\s\S]*?```|`[^`]*`)/)
    .map((part, i) => {
      if (i % 2 === 1) return part;
      let s = part;
      for (const m of [...people].sort((a, b) => b.user.username.length - a.user.username.length)) {
        const re = new RegExp("(^|\\s)@" + m.user.username.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?![\\w.@-])", "gi");
        s = s.replace(re, `$1<@${m.user.id}>`);
      }
      if (gid) {
        const roles = store.guilds.get(gid)?.roles ?? [];
        for (const r of roles) {
          if (r.id === gid) continue;
          const re = new RegExp("(^|\\s)@" + r.name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?![\\w-])", "g");
          s = s.replace(re, `$1<@&${r.id}>`);
        }
        for (const c of store.channelsOf(gid)) {
          if (c.type !== 0) continue;
          const re = new RegExp("(^|\\s)#" + c.name!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "(?![\\w-])", "g");
          s = s.replace(re, `$1<#${c.id}>`);
        }
      }
      return s.replace(/:([a-z0-9_]+):/g, (all, n) => byName.get(n) ?? all);
    })
    .join("");
}

/** Composer is the message input: Enter sends, Shift+Enter breaks the line, Up edits the last own message. */
export function Composer({ channelId, canSend }: { channelId: string; canSend: boolean }) {
  useTopics("ui", "members");
  const c = store.channels.get(channelId);
  const gid = c?.guild_id;
  const where = isPrivate(c) ? "@" + store.channelLabel(c) : "#" + (c?.name ?? "");
  const [text, setText] = useState("");
  const [sel, setSel] = useState(0);
  const [sugg, setSugg] = useState<{ from: number; items: Suggestion[] } | null>(null);
  const [files, setFiles] = useState<File[]>([]);
  const [fileErr, setFileErr] = useState("");
  const [shrink, setShrink] = useState(() => localStorage.getItem("hearth.shrinkImages") === "1");
  const ta = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);

  const addFiles = (add: File[]) => {
    if (!add.length || !canSend) return;
    const all = [...files, ...add];
    setFiles(all.slice(0, MAX_FILES));
    setFileErr(all.length > MAX_FILES ? `A message can carry at most ${MAX_FILES} files; the first ${MAX_FILES} are kept.` : "");
    ta.current?.focus();
  };
  useEffect(() => {
    attachHooks.add = addFiles;
    return () => {
      if (attachHooks.add === addFiles) attachHooks.add = null;
    };
  });

  const update = (v: string) => {
    setText(v);
    const el = ta.current!;
    setSugg(suggest(v, el.selectionStart, gid, mentionable(channelId)));
    setSel(0);
    if (v.trim()) typing(channelId);
  };
  const apply = (s: Suggestion) => {
    if (!sugg) return;
    const el = ta.current!;
    const caret = el.selectionStart;
    const v = text.slice(0, sugg.from) + s.insert + text.slice(caret);
    setText(v);
    setSugg(null);
    const pos = sugg.from + s.insert.length;
    // After the render; not if the user typed on meanwhile (a fast typist, a slow machine):
    // the caret would jump back into what they typed.
    requestAnimationFrame(() => el.value === v && el.setSelectionRange(pos, pos));
  };
  const send = () => {
    const v = text.trim();
    if (!v && !files.length) return;
    if ([...v].length > 2000) return;
    setText("");
    setSugg(null);
    setFiles([]);
    setFileErr("");
    resetTypingThrottle();
    const content = encode(v, gid, mentionable(channelId));
    if (shrink && files.some(shrinkable)) void Promise.all(files.map((f) => shrinkImage(f))).then((fs) => sendMessage(channelId, content, fs));
    else void sendMessage(channelId, content, files);
  };
  const onKey = (e: KeyboardEvent) => {
    if (sugg) {
      if (e.key === "ArrowDown") return (e.preventDefault(), setSel((sel + 1) % sugg.items.length));
      if (e.key === "ArrowUp") return (e.preventDefault(), setSel((sel - 1 + sugg.items.length) % sugg.items.length));
      if (e.key === "Enter" || e.key === "Tab") return (e.preventDefault(), apply(sugg.items[sel]));
      if (e.key === "Escape") return (e.stopPropagation(), setSugg(null));
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === "ArrowUp" && text === "" && store.me) {
      const list = store.msgs(channelId).list;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i].author.id === store.me.id && !list[i].id.startsWith("pending:")) {
          e.preventDefault();
          setUI({ editing: list[i].id });
          break;
        }
      }
    } else if (e.key === "Escape" && ui.replyTo) {
      e.stopPropagation();
      setUI({ replyTo: null });
    }
  };
  const count = [...text].length;
  return (
    <div class="composer">
      {ui.replyTo && (
        <div class="replying">
          <span>
            Replying to <strong>{store.displayName(ui.replyTo.author.id, gid)}</strong>
          </span>
          <button type="button" class="icon" aria-label="Cancel reply" onClick={() => setUI({ replyTo: null })}>
            <Icon name="close" size={16} />
          </button>
        </div>
      )}
      {sugg && (
        <ul class="autocomplete" role="listbox" id="composer-suggestions" aria-label="Suggestions">
          {sugg.items.map((s, i) => (
            <li
              key={s.insert + i}
              id={"sugg-" + i}
              role="option"
              aria-selected={i === sel}
              class={i === sel ? "sel" : ""}
              onMouseDown={(e) => (e.preventDefault(), apply(s))}
            >
              <span>{s.label}</span> <span class="muted">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
      {files.length > 0 && (
        <ul class="file-chips" aria-label="Files to send">
          {files.map((f, i) => (
            <FileChip key={f.name + i + f.size} f={f} onRemove={() => setFiles(files.filter((_, j) => j !== i))} />
          ))}
        </ul>
      )}
      {files.some(shrinkable) && (
        <label class="check shrink">
          <input
            type="checkbox"
            checked={shrink}
            onChange={(e) => {
              const on = e.currentTarget.checked;
              localStorage.setItem("hearth.shrinkImages", on ? "1" : "0");
              setShrink(on);
            }}
          />{" "}
          Shrink large images before sending (to {SHRINK_MAX} pixels)
        </label>
      )}
      {fileErr && (
        <p class="error small" role="alert">
          {fileErr}
        </p>
      )}
      <div class="composer-row">
        <button type="button" class="icon attach" aria-label="Attach files" title="Attach files" disabled={!canSend} onClick={() => picker.current?.click()}>
          <Icon name="paperclip" size={22} />
        </button>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          aria-label="Files to attach"
          onChange={(e) => {
            addFiles([...(e.currentTarget.files ?? [])]);
            e.currentTarget.value = "";
          }}
        />
        <textarea
          id="composer-input"
          ref={ta}
          rows={1}
          aria-autocomplete="list"
          aria-controls={sugg ? "composer-suggestions" : undefined}
          aria-activedescendant={sugg ? "sugg-" + sel : undefined}
          aria-label={`Message ${where}`}
          placeholder={canSend ? `Message ${where}` : "You do not have permission to send messages here"}
          disabled={!canSend}
          value={text}
          onInput={(e) => update(e.currentTarget.value)}
          onKeyDown={onKey}
          onPaste={(e) => {
            const pasted = [...(e.clipboardData?.files ?? [])];
            if (pasted.length) {
              e.preventDefault();
              addFiles(pasted);
            }
          }}
          style={{ height: Math.min(200, 22 * Math.max(1, text.split("\n").length) + 20) + "px" }}
        />
      </div>
      {count > 1800 && (
        <span class={count > 2000 ? "counter error" : "counter"} aria-live="polite">
          {2000 - count}
        </span>
      )}
    </div>
  );
}
