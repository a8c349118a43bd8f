import { useEffect, useRef, useState } from "preact/hooks";
import { EMOJI } from "../emoji";

/** EmojiPicker is a searchable emoji grid; arrow keys move, Enter picks, Esc closes. */
export function EmojiPicker({ onPick, onClose }: { onPick: (e: string) => void; onClose: () => void }) {
  const [q, setQ] = useState("");
  const [idx, setIdx] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  useEffect(() => input.current?.focus(), []);
  const shown = EMOJI.filter(([n]) => n.includes(q.toLowerCase().replace(/:/g, "")));
  const COLS = 8;
  const move = (d: number) => setIdx(Math.max(0, Math.min(shown.length - 1, idx + d)));
  return (
    <div
      class="emoji-picker"
      role="dialog"
      aria-label="Emoji picker"
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          e.stopPropagation();
          onClose();
        } else if (e.key === "ArrowRight") move(1);
        else if (e.key === "ArrowLeft") move(-1);
        else if (e.key === "ArrowDown") (e.preventDefault(), move(COLS));
        else if (e.key === "ArrowUp") (e.preventDefault(), move(-COLS));
        else if (e.key === "Enter" && shown[idx]) {
          e.preventDefault();
          onPick(shown[idx][1]);
        }
      }}
    >
      <input
        ref={input}
        type="search"
        aria-label="Search emoji"
        placeholder="Search emoji"
        value={q}
        aria-activedescendant={shown[idx] ? "emo-" + shown[idx][0] : undefined}
        aria-controls="emoji-grid"
        onInput={(e) => (setQ(e.currentTarget.value), setIdx(0))}
      />
      <div class="emoji-grid" id="emoji-grid" role="listbox" aria-label="Emoji">
        {shown.map(([name, ch], i) => (
          <button
            type="button"
            key={name}
            id={"emo-" + name}
            role="option"
            aria-selected={i === idx}
            aria-label={name.replace(/_/g, " ")}
            title={":" + name + ":"}
            class={i === idx ? "sel" : ""}
            tabIndex={-1}
            onClick={() => onPick(ch)}
          >
            {ch}
          </button>
        ))}
        {!shown.length && <p class="muted">No emoji match.</p>}
      </div>
    </div>
  );
}
