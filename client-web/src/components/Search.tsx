import { useRef, useState } from "preact/hooks";
import { Icon } from "../icons";
import type { Message } from "../api";
import { ApiError } from "../api";
import { HOME, isPrivate, store, useTopics } from "../store";
import { api, jumpTo, setUI, ui } from "../session";
import { preview } from "../render";
import { COMBOBOX } from "./QuickSwitcher";

/** FILTERS are the search filters of spec/search.md's text form, offered while typing. */
const FILTERS: Array<[string, string]> = [
  ["from:", "a member"],
  ["mentions:", "a member"],
  ["in:", "a channel"],
  ["has:", "link, embed, file, image, video, sound"],
  ["before:", "a date (YYYY-MM-DD)"],
  ["after:", "a date (YYYY-MM-DD)"],
  ["during:", "a date (YYYY-MM-DD)"],
  ["pinned:", "true or false"],
];
const HAS = ["link", "embed", "file", "image", "video", "sound"];

/** filterSuggestions completes the filter word being typed at the end of the query. */
export function filterSuggestions(q: string, gid: string): Array<{ label: string; detail: string; value: string }> {
  const m = /(^|\s)([a-z]*)(:?)([^\s:]*)$/.exec(q);
  if (!m) return [];
  const head = q.slice(0, q.length - m[2].length - m[3].length - m[4].length);
  if (!m[3]) {
    return FILTERS.filter(([k]) => m[2] && k.startsWith(m[2]) || !m[2] && q.endsWith(" ") || (!m[2] && q === ""))
      .map(([k, d]) => ({ label: k, detail: d, value: head + k }));
  }
  const key = m[2];
  const v = m[4].toLowerCase();
  const today = new Date().toISOString().slice(0, 10);
  let vals: Array<[string, string]> = [];
  if (key === "from" || key === "mentions") {
    vals = [...(store.members.get(gid)?.values() ?? [])]
      .filter((x) => x.user.username.toLowerCase().startsWith(v))
      .slice(0, 8)
      .map((x) => [x.user.username, store.displayName(x.user.id, gid)]);
  } else if (key === "in") {
    vals = store.channelsOf(gid).filter((c) => c.type === 0 && c.name!.startsWith(v)).slice(0, 8).map((c) => [c.name!, "channel"]);
  } else if (key === "has") {
    vals = HAS.filter((h) => h.startsWith(v)).map((h) => [h, ""]);
  } else if (key === "before" || key === "after" || key === "during") {
    vals = [[today, "today"]];
  } else if (key === "pinned") {
    vals = [["true", ""], ["false", ""]];
  }
  return vals.map(([val, d]) => ({ label: key + ":" + val, detail: d, value: head + key + ":" + val + " " }));
}

/** SearchBox is the header search: filter autocomplete, Enter searches the guild. */
export function SearchBox() {
  useTopics("ui");
  const [q, setQ] = useState("");
  const [sel, setSel] = useState(-1);
  const [open, setOpen] = useState(false);
  const input = useRef<HTMLInputElement>(null);
  const gid = ui.guildId;
  const sugg = open ? filterSuggestions(q, gid) : [];
  // A DM is searched on its own (spec/search.md §1), a guild channel with its whole guild.
  const c = store.channels.get(ui.channelId);
  const route = isPrivate(c) ? `/channels/${c!.id}/messages/search` : `/guilds/${gid}/messages/search`;
  const run = async () => {
    const text = q.trim();
    if (!text || !gid || (gid === HOME && !isPrivate(c))) return;
    setOpen(false);
    setUI({ searchResults: { query: text, total: 0, messages: [] }, showMembers: true });
    try {
      const r = await api.get<{ total_results: number; messages: Message[][] }>(`${route}?content=${encodeURIComponent(text)}`);
      setUI({ searchResults: { query: text, total: r.total_results, messages: r.messages.map((x) => x[0]).filter(Boolean) } });
    } catch (e) {
      setUI({ searchResults: { query: text, total: 0, messages: [], error: (e as ApiError).message } });
    }
  };
  return (
    <div class="search" role="search">
      <input
        ref={input}
        type="text"
        {...COMBOBOX}
        aria-label="Search messages"
        aria-autocomplete="list"
        aria-expanded={sugg.length > 0}
        aria-controls="search-suggestions"
        aria-activedescendant={sel >= 0 && sugg[sel] ? "ss-" + sel : undefined}
        placeholder="Search"
        value={q}
        onFocus={() => setOpen(true)}
        onBlur={() => setTimeout(() => setOpen(false), 150)}
        onInput={(e) => (setQ(e.currentTarget.value), setSel(-1), setOpen(true))}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown" && sugg.length) (e.preventDefault(), setSel((sel + 1) % sugg.length));
          else if (e.key === "ArrowUp" && sugg.length) (e.preventDefault(), setSel((sel - 1 + sugg.length) % sugg.length));
          else if ((e.key === "Enter" || e.key === "Tab") && sel >= 0 && sugg[sel]) {
            e.preventDefault();
            setQ(sugg[sel].value);
            setSel(-1);
          } else if (e.key === "Enter") {
            e.preventDefault();
            void run();
          } else if (e.key === "Escape") {
            e.stopPropagation();
            if (open && sugg.length) setOpen(false);
            else setUI({ searchResults: null });
          }
        }}
      />
      {sugg.length > 0 && (
        <ul class="autocomplete search-sugg" role="listbox" id="search-suggestions" aria-label="Search filters">
          {sugg.map((s, i) => (
            <li key={s.label} id={"ss-" + i} role="option" aria-selected={i === sel} class={i === sel ? "sel" : ""} onMouseDown={(e) => (e.preventDefault(), setQ(s.value), input.current?.focus())}>
              <strong>{s.label}</strong> <span class="muted">{s.detail}</span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** SearchResults replaces the member list while a search is open; a hit jumps to the message. */
export function SearchResults() {
  useTopics("ui");
  const r = ui.searchResults;
  if (!r) return null;
  const gid = ui.guildId;
  return (
    <aside class="members search-results" aria-label="Search results">
      <div class="sr-head">
        <div role="status">
          <h3>{r.error ? "Search failed" : `${r.total} result${r.total === 1 ? "" : "s"}`}</h3>
        </div>
        <button type="button" class="icon" aria-label="Close search results" onClick={() => setUI({ searchResults: null })}>
          <Icon name="close" size={16} />
        </button>
      </div>
      {r.error && <p class="error">{r.error}</p>}
      <ul class="result-list">
        {r.messages.map((m) => (
          <li key={m.id}>
            <button type="button" class="result" onClick={() => void jumpTo(m.channel_id, m.id)}>
              <span class="muted small">{isPrivate(store.channels.get(m.channel_id)) ? "@" : "#"}{store.channelLabel(store.channels.get(m.channel_id))}</span>
              <strong>{store.displayName(m.author.id, gid)}</strong>
              <span>{preview(m.content, gid, 200)}</span>
            </button>
          </li>
        ))}
      </ul>
    </aside>
  );
}
