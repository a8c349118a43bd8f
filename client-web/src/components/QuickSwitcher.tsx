import { useState } from "preact/hooks";
import { store } from "../store";
import { selectChannel, selectGuild, setUI } from "../session";
import { Modal } from "./Modal";

/** COMBOBOX gives a text input the ARIA 1.2 combobox role (Preact's types only allow it with a datalist). */
export const COMBOBOX = { role: "combobox" } as Record<string, string>;

interface Entry {
  id: string;
  label: string;
  detail: string;
  go: () => void;
}

/** QuickSwitcher (Ctrl+K) finds a channel or server by name; arrows move, Enter opens. */
export function QuickSwitcher() {
  const [q, setQ] = useState("");
  const [sel, setSel] = useState(0);
  const all: Entry[] = [];
  for (const c of store.channels.values()) {
    if (c.type !== 0 || !c.guild_id) continue;
    const g = store.guilds.get(c.guild_id);
    all.push({ id: c.id, label: "#" + c.name, detail: g?.name ?? "", go: () => selectChannel(c.id) });
  }
  for (const c of store.dms()) all.push({ id: c.id, label: "@" + store.channelLabel(c), detail: "direct message", go: () => selectChannel(c.id) });
  for (const gid of store.guildOrder) {
    const g = store.guilds.get(gid);
    if (g) all.push({ id: gid, label: g.name, detail: "server", go: () => selectGuild(gid) });
  }
  const needle = q.toLowerCase().replace(/^[#@]/, "");
  const score = (e: Entry) => {
    const l = e.label.toLowerCase().replace(/^[#@]/, "");
    if (!needle) return 1;
    if (l.startsWith(needle)) return 3;
    if (l.includes(needle)) return 2;
    // Subsequence match, as fuzzy finders do.
    let i = 0;
    for (const ch of l) if (ch === needle[i]) i++;
    return i === needle.length ? 1 : 0;
  };
  const shown = all
    .map((e) => [score(e), e] as const)
    .filter(([s]) => s > 0)
    .sort((a, b) => b[0] - a[0])
    .slice(0, 12)
    .map(([, e]) => e);
  const pick = (e: Entry | undefined) => {
    if (!e) return;
    setUI({ dialog: null });
    e.go();
    requestAnimationFrame(() => document.getElementById("composer-input")?.focus());
  };
  return (
    <Modal title="Quick switcher" onClose={() => setUI({ dialog: null })}>
      <input
        type="text"
        {...COMBOBOX}
        aria-label="Where would you like to go?"
        aria-expanded="true"
        aria-controls="switcher-list"
        aria-activedescendant={shown[sel] ? "sw-" + shown[sel].id : undefined}
        placeholder="Where would you like to go?"
        value={q}
        autofocus
        onInput={(e) => (setQ(e.currentTarget.value), setSel(0))}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") (e.preventDefault(), setSel(Math.min(shown.length - 1, sel + 1)));
          else if (e.key === "ArrowUp") (e.preventDefault(), setSel(Math.max(0, sel - 1)));
          else if (e.key === "Enter") (e.preventDefault(), pick(shown[sel]));
        }}
      />
      <ul id="switcher-list" role="listbox" class="result-list" aria-label="Matches">
        {shown.map((e, i) => (
          <li key={e.id} id={"sw-" + e.id} role="option" aria-selected={i === sel} class={i === sel ? "sel" : ""} onClick={() => pick(e)}>
            <span>{e.label}</span> <span class="muted">{e.detail}</span>
          </li>
        ))}
      </ul>
    </Modal>
  );
}
