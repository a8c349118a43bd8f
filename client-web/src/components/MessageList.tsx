// MessageList is the virtualised message pane: only the messages in and near the viewport are in
// the DOM, heights are measured as they render and estimated for the rest, and the scroll position
// stays anchored to the message the user is reading while older pages load above it.

import { useEffect, useLayoutEffect, useMemo, useReducer, useRef, useState } from "preact/hooks";
import { Icon } from "../icons";
import type { Attachment, Message } from "../api";
import { snowflakeTime } from "../api";
import { parse, type MdNode } from "../markdown";
import { preview, renderNodes } from "../render";
import { readable } from "../color";
import { findIdx, isPrivate, store, useTopics } from "../store";
import { cancelUpload, canRetry, deleteMessage, referenced, retryMessage, editMessage, fmtSize, jumpTo, loadNewer, loadOlder, perf, setPinned, setUI, toggleReaction, ui, type Progress } from "../session";
import { EmojiPicker } from "./EmojiPicker";
import { Avatar } from "./Avatar";

/** OVERSCAN is how many pixels above and below the viewport are rendered. */
const OVERSCAN = 600;
const EST_HEAD = 46;
const EST_CONT = 24;
/** GROUP_MS: a message from the same author within this time continues the group without a header. */
const GROUP_MS = 7 * 60 * 1000;

const astCache = new WeakMap<Message, MdNode[]>();
function ast(m: Message): MdNode[] {
  let a = astCache.get(m);
  if (!a) astCache.set(m, (a = parse(m.content)));
  return a;
}

const timeCache = new Map<string, number>();
function msgTime(m: Message): number {
  if (m.id.startsWith("pending:")) return Date.parse(m.timestamp);
  let t = timeCache.get(m.id);
  if (t === undefined) {
    t = snowflakeTime(m.id);
    if (timeCache.size > 200000) timeCache.clear();
    timeCache.set(m.id, t);
  }
  return t;
}

function continues(prev: Message | undefined, m: Message): boolean {
  return !!prev && prev.author.id === m.author.id && !m.referenced_message && m.type !== 19 && msgTime(m) - msgTime(prev) < GROUP_MS;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function colorOf(n: number): string | undefined {
  return n ? "#" + n.toString(16).padStart(6, "0") : undefined;
}

/** IMG_MAX_W and IMG_MAX_H bound an inline image's box; its width and height come from the
 * attachment, so the message's height is known before the image loads (the virtual list stays put). */
const IMG_MAX_W = 400;
const IMG_MAX_H = 300;

/** fit scales w×h down (never up) to fit the inline image box. */
export function fit(w: number, h: number): [number, number] {
  const k = Math.min(1, IMG_MAX_W / w, IMG_MAX_H / h);
  return [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
}

const INLINE_IMAGE = /^image\/(png|jpeg|gif|webp)$/;

/** AttachmentView shows one attachment: an image inline (its thumbnail, opening full size), video
 * and audio with the browser's controls, anything else as a download card. */
function AttachmentView({ a, pending }: { a: Attachment; pending: boolean }) {
  const type = a.content_type ?? "";
  if (!pending && INLINE_IMAGE.test(type) && a.width && a.height) {
    const [w, h] = fit(a.width, a.height);
    return (
      <button type="button" class="att-image" aria-label={`Open image ${a.filename}, ${a.width}×${a.height}`} onClick={() => setUI({ dialog: { kind: "image", attachment: a } })}>
        <img src={a.proxy_url || a.url} alt={a.filename} width={w} height={h} loading="lazy" decoding="async" />
      </button>
    );
  }
  if (!pending && /^video\/(mp4|webm|ogg)$/.test(type)) {
    return <video class="att-video" src={a.url} controls preload="metadata" aria-label={a.filename} width={IMG_MAX_W} height={225} />;
  }
  if (!pending && /^audio\//.test(type)) {
    return (
      <div class="att-file">
        <Icon name="file" size={28} />
        <div class="att-meta">
          <a href={a.url} download={a.filename}>{a.filename}</a>
          <audio src={a.url} controls preload="none" aria-label={a.filename} />
        </div>
      </div>
    );
  }
  return (
    <div class="att-file">
      <Icon name="file" size={28} />
      <div class="att-meta">
        {pending ? <span class="att-name">{a.filename}</span> : (
          <a href={a.url} download={a.filename} aria-label={`Download ${a.filename}, ${fmtSize(a.size)}`}>
            {a.filename}
          </a>
        )}
        <span class="muted small">{fmtSize(a.size)}</span>
      </div>
      {!pending && (
        <a class="att-download" href={a.url} download={a.filename} title="Download" aria-hidden="true" tabIndex={-1}>
          <Icon name="download" />
        </a>
      )}
    </div>
  );
}

/** MessageItem renders one message with its header (unless grouped), reply preview, body, reactions and actions. */
function MessageItem(props: { m: Message; grouped: boolean; gid?: string; highlight: boolean; canManage: boolean }) {
  const { m, grouped, gid } = props;
  const [picker, setPicker] = useState(false);
  const mine = store.me?.id === m.author.id;
  const pending = m.id.startsWith("pending:");
  const failed = (m as any).failed as string | undefined;
  const progress = (m as any).progress as Progress | undefined;
  const editing = ui.editing === m.id;
  const name = store.displayName(m.author.id, gid);
  const t = new Date(msgTime(m));
  const mentioned = !mine && store.me && (m.mention_everyone || m.mentions?.some((u) => u.id === store.me!.id));
  const ref = referenced(m);
  return (
    <article
      class={"msg" + (grouped ? " grouped" : "") + (props.highlight ? " flash" : "") + (mentioned ? " mentioned" : "") + (pending ? " pending" : "")}
      data-id={m.id}
      tabIndex={-1}
      aria-label={`${name}, ${dateFmt.format(t)}`}
    >
      {ref && (
        <button type="button" class="reply-preview" aria-label={`Replying to ${store.displayName(ref.author.id, gid)}: ${preview(ref.content, gid, 80)}`} onClick={() => void jumpTo(ref.channel_id, ref.id)}>
          <span class="reply-arrow" aria-hidden="true">↱</span>
          <strong>{store.displayName(ref.author.id, gid)}</strong> <span class="muted">{preview(ref.content, gid)}</span>
        </button>
      )}
      {!grouped && (
        <header class="msg-head">
          <Avatar uid={m.author.id} name={name} hint={m.author} color={colorOf(store.roleColor(m.author.id, gid))} />
          <span class="author" style={{ color: readable(store.roleColor(m.author.id, gid), ui.theme) }}>
            {name}
          </span>
          <time dateTime={t.toISOString()} title={dateFmt.format(t)}>
            {dateFmt.format(t)}
          </time>
        </header>
      )}
      {grouped && (
        <time class="side-time" dateTime={t.toISOString()} aria-hidden="true">
          {timeFmt.format(t)}
        </time>
      )}
      {editing ? (
        <EditBox m={m} />
      ) : (
        <div class="content">
          {renderNodes(ast(m), gid)}
          {m.edited_timestamp && <span class="edited muted"> (edited)</span>}
          {m.pinned && (
            <span class="edited muted" title="Pinned">
              {" "}
              <Icon name="pin" size={12} />
              <span class="sr-only">pinned</span>
            </span>
          )}
        </div>
      )}
      {!!m.attachments?.length && (
        <div class="attachments">
          {m.attachments.map((a) => (
            <AttachmentView key={a.id} a={a} pending={pending} />
          ))}
        </div>
      )}
      {progress && (
        <div class="upload-progress">
          <progress max={progress.total || 1} value={progress.sent} aria-label={`Uploading ${m.attachments?.length ?? 0} file${m.attachments?.length === 1 ? "" : "s"}`} />
          <span class="muted small">{progress.total ? Math.floor((progress.sent / progress.total) * 100) : 0}%</span>
          <button type="button" onClick={() => cancelUpload(m)}>
            Cancel
          </button>
        </div>
      )}
      {failed && (
        <div class="failed">
          <p class="error" role="alert">
            Not sent: {failed}
          </p>
          {canRetry(m) && (
            <button type="button" onClick={() => retryMessage(m)}>
              Retry
            </button>
          )}
          <button type="button" onClick={() => void deleteMessage(m)}>
            Dismiss
          </button>
        </div>
      )}
      {!!m.reactions?.length && (
        <div class="reactions" role="group" aria-label="Reactions">
          {m.reactions.map((r) => (
            <button
              type="button"
              key={r.emoji.name}
              class={"reaction" + (r.me ? " me" : "")}
              aria-pressed={r.me}
              aria-label={`${r.emoji.name} ${r.count} reaction${r.count > 1 ? "s" : ""}${r.me ? ", press to remove yours" : ", press to add yours"}`}
              onClick={() => void toggleReaction(m, r.emoji.name)}
            >
              {r.emoji.name} <span>{r.count}</span>
            </button>
          ))}
        </div>
      )}
      {!pending && !editing && (
        <div class="msg-actions" role="toolbar" aria-label="Message actions">
          <button type="button" class="icon" aria-label="Add reaction" title="Add reaction" aria-expanded={picker} onClick={() => setPicker(!picker)}>
            <Icon name="smile" />
          </button>
          <button type="button" class="icon" aria-label="Reply" title="Reply" onClick={() => {
            setUI({ replyTo: m });
            document.getElementById("composer-input")?.focus();
          }}>
            <Icon name="reply" />
          </button>
          {mine && (
            <button type="button" class="icon" aria-label="Edit message" title="Edit" onClick={() => setUI({ editing: m.id })}>
              <Icon name="edit" />
            </button>
          )}
          {props.canManage && (
            <button type="button" class="icon" aria-label={m.pinned ? "Unpin message" : "Pin message"} title={m.pinned ? "Unpin" : "Pin"} onClick={() => void setPinned(m, !m.pinned)}>
              <Icon name="pin" />
            </button>
          )}
          {(mine || props.canManage) && (
            <button type="button" class="icon danger" aria-label="Delete message" title="Delete" onClick={() => setUI({ dialog: { kind: "confirm-delete", message: m } })}>
              <Icon name="trash" />
            </button>
          )}
        </div>
      )}
      {picker && (
        <EmojiPicker
          onPick={(e) => {
            setPicker(false);
            void toggleReaction(m, e);
          }}
          onClose={() => setPicker(false)}
        />
      )}
    </article>
  );
}

function EditBox({ m }: { m: Message }) {
  const [v, setV] = useState(m.content);
  const ref = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    ref.current?.focus();
  }, []);
  const save = async () => {
    const c = v.trim();
    setUI({ editing: "" });
    if (!c) setUI({ dialog: { kind: "confirm-delete", message: m } });
    else if (c !== m.content) await editMessage(m, c);
    document.getElementById("composer-input")?.focus();
  };
  return (
    <div class="edit-box">
      <textarea
        ref={ref}
        aria-label="Edit message"
        value={v}
        rows={Math.min(8, v.split("\n").length)}
        onInput={(e) => setV(e.currentTarget.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey) {
            e.preventDefault();
            void save();
          } else if (e.key === "Escape") {
            e.stopPropagation();
            setUI({ editing: "" });
            document.getElementById("composer-input")?.focus();
          }
        }}
      />
      <p class="hint muted">Enter to save · Esc to cancel</p>
    </div>
  );
}

interface Anchor {
  id: string;
  delta: number;
}

/** MessageList renders the visible slice of a channel's loaded messages. */
export function MessageList({ channelId, canManage }: { channelId: string; canManage: boolean }) {
  useTopics("messages:" + channelId, "members", "ui");
  const cm = store.msgs(channelId);
  const list = cm.list;
  const c = store.channels.get(channelId);
  const gid = c?.guild_id;
  const scroller = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const atBottom = useRef(true);
  const lastTop = useRef(0);
  const lastSeen = useRef<Message | undefined>(undefined);
  const anchor = useRef<Anchor | null>(null);
  const [flash, setFlash] = useState("");
  const [, rerender] = useReducer((x: number) => x + 1, 0);
  const viewport = useRef({ top: 0, height: 800 });
  const listEl = useRef<HTMLDivElement>(null);
  /** base is the list's offset inside the scroller (the channel header and loading line sit above it). */
  const base = useRef(0);

  // A new channel starts at the bottom.
  useLayoutEffect(() => {
    atBottom.current = true;
    anchor.current = null;
    heights.current = new Map();
  }, [channelId]);

  // Sending a message always brings the list back to the newest message.
  const last = list[list.length - 1];
  if (last && last.id.startsWith("pending:") && last !== lastSeen.current) atBottom.current = true;
  lastSeen.current = last;

  // Grouping depends only on the list; offsets (prefix sums of measured or estimated heights) on
  // the list and the measurements. Both are recomputed only when those change, not per scroll frame.
  const n = list.length;
  const grouped = useMemo(() => {
    const g = new Uint8Array(n);
    for (let i = 1; i < n; i++) g[i] = continues(list[i - 1], list[i]) ? 1 : 0;
    return g;
  }, [list]);
  const [heightsVersion, bumpHeights] = useReducer((x: number) => x + 1, 0);
  const offsets = useMemo(() => {
    const o = new Float64Array(n + 1);
    const hs = heights.current;
    for (let i = 0; i < n; i++) o[i + 1] = o[i] + (hs.get(list[i].id) ?? (grouped[i] ? EST_CONT : EST_HEAD));
    return o;
  }, [list, grouped, heightsVersion]);
  const total = offsets[n];
  const height = viewport.current.height;
  // While pinned to the bottom, the window is the last screenful whatever scrollTop says.
  const top = atBottom.current ? total - height : viewport.current.top - base.current;
  // Binary search for the first item that ends below the rendered window's top.
  const lo = Math.max(0, top - OVERSCAN);
  const hi = top + height + OVERSCAN;
  let a = 0;
  let b = n;
  while (a < b) {
    const mid = (a + b) >> 1;
    if (offsets[mid + 1] <= lo) a = mid + 1;
    else b = mid;
  }
  const start = a;
  let end = start;
  while (end < n && offsets[end] < hi) end++;
  if (atBottom.current) end = n;

  const indexOf = (id: string) => findIdx(list, id);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    // Measure what rendered.
    let changed = false;
    el.querySelectorAll<HTMLElement>(".msg-slot").forEach((node) => {
      const id = node.dataset.id!;
      const h = node.offsetHeight;
      // A hidden pane (phone width, another pane shown) lays nothing out: 0 is not a height, and
      // keeping it would leave every message out of the window once the pane shows again.
      if (h === 0) return;
      if (heights.current.get(id) !== h) {
        heights.current.set(id, h);
        changed = true;
      }
    });
    if (cm.jumpTo) {
      const i = indexOf(cm.jumpTo);
      if (i >= 0) {
        atBottom.current = false;
        anchor.current = { id: cm.jumpTo, delta: -el.clientHeight / 3 };
        setFlash(cm.jumpTo);
        window.setTimeout(() => setFlash(""), 2000);
      }
      cm.jumpTo = undefined;
      changed = true;
    }
    const b = listEl.current?.offsetTop ?? 0;
    if (b !== base.current) {
      base.current = b;
      changed = true;
    }
    if (changed) {
      bumpHeights(0);
      return;
    }
    if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    } else if (anchor.current) {
      const i = indexOf(anchor.current.id);
      if (i >= 0) {
        const want = Math.max(0, base.current + offsets[i] + anchor.current.delta);
        if (Math.abs(el.scrollTop - want) > 1) el.scrollTop = want;
      }
    }
    viewport.current = { top: el.scrollTop, height: el.clientHeight };
    lastTop.current = el.scrollTop;
    if (n > 0 && perf.messagesShown === undefined) {
      perf.messagesShown = performance.now();
    }
    if (perf.switchStart !== undefined) {
      const s = perf.switchStart;
      delete perf.switchStart;
      requestAnimationFrame(() => {
        perf.lastSwitchMs = performance.now() - s;
      });
    }
  });

  const onScroll = () => {
    const el = scroller.current!;
    const st = el.scrollTop;
    const rel = st - base.current;
    // Only a move up unpins the list from the bottom: the list's own scrolls to the bottom (which
    // may report stale geometry while heights settle) must not unpin it.
    const dist = el.scrollHeight - st - el.clientHeight;
    if (st < lastTop.current - 1) atBottom.current = dist < 4;
    else if (dist < 4) atBottom.current = true;
    lastTop.current = st;
    // Record the first visible message as the anchor.
    let i = 0;
    let j = n;
    while (i < j) {
      const mid = (i + j) >> 1;
      if (offsets[mid + 1] <= rel) i = mid + 1;
      else j = mid;
    }
    if (i < n) anchor.current = { id: list[i].id, delta: rel - offsets[i] };
    viewport.current = { top: st, height: el.clientHeight };
    if (st < 1500 && cm.hasBefore && !cm.loading) void loadOlder(channelId);
    if (cm.hasAfter && el.scrollHeight - st - el.clientHeight < 1500 && !cm.loading) void loadNewer(channelId);
    rerender(0);
  };

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const ro = new ResizeObserver(() => {
      viewport.current = { top: el.scrollTop, height: el.clientHeight };
      rerender(0);
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // The spacer keeps the scrollbar proportional to the whole loaded history.
  const padTop = offsets[start];
  const padBottom = total - offsets[end];
  const items = [];
  for (let i = start; i < end; i++) {
    const m = list[i];
    items.push(
      <div class="msg-slot" data-id={m.id} key={m.id} role="listitem">
        <MessageItem m={m} grouped={grouped[i] === 1} gid={gid} highlight={flash === m.id} canManage={canManage} />
      </div>,
    );
  }
  return (
    <div
      class="scroller"
      ref={scroller}
      onScroll={onScroll}
      tabIndex={0}
      aria-label={`Messages in ${store.channelLabel(c) || "channel"}; use the arrow keys to move between messages`}
      onKeyDown={(e) => {
        // Arrow keys move focus between messages; a focused message shows its action toolbar,
        // which Tab then reaches (reply, react, edit, pin, delete from the keyboard).
        if ((e.key === "ArrowUp" || e.key === "ArrowDown") && !e.altKey) {
          const t = e.target as HTMLElement;
          if (t !== scroller.current && !t.classList.contains("msg")) return;
          const all = [...scroller.current!.querySelectorAll<HTMLElement>("article.msg")];
          if (!all.length) return;
          e.preventDefault();
          const i = all.indexOf(t);
          const next = i < 0 ? all[all.length - 1] : all[Math.max(0, Math.min(all.length - 1, i + (e.key === "ArrowUp" ? -1 : 1)))];
          next.focus();
          next.scrollIntoView({ block: "nearest" });
          return;
        }
        if (e.key === "Escape" && cm.hasAfter) {
          // Esc in a jumped-to window goes back to the present.
          store.messages.delete(channelId);
          void loadOlder(channelId);
        }
      }}
    >
      {!cm.hasBefore && (
        <div class="chan-start">
          {isPrivate(c) ? (
            <>
              <h3>{store.channelLabel(c)}</h3>
              <p class="muted">This is the beginning of your direct message history with {store.channelLabel(c)}.</p>
            </>
          ) : (
            <>
              <h3>Welcome to #{c?.name}</h3>
              <p class="muted">This is the start of the #{c?.name} channel.</p>
            </>
          )}
        </div>
      )}
      {cm.loading && cm.hasBefore && <p class="loading muted" role="status">Loading messages…</p>}
      <div role="list" ref={listEl} aria-label="Messages" style={{ paddingTop: padTop + "px", paddingBottom: padBottom + "px" }}>
        {items}
      </div>
      {cm.hasAfter && (
        <button type="button" class="jump-present" onClick={() => {
          store.messages.delete(channelId);
          void loadOlder(channelId);
        }}>
          You are viewing older messages — jump to present
        </button>
      )}
    </div>
  );
}
