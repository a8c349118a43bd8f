import { useEffect, useReducer } from "preact/hooks";
import { store, useTopics } from "../store";

/** Typing shows who is typing in the channel; entries expire 10 s after their TYPING_START. */
export function Typing({ channelId }: { channelId: string }) {
  useTopics("typing:" + channelId);
  const [, tick] = useReducer((x: number) => x + 1, 0);
  const tm = store.typing.get(channelId);
  const now = Date.now();
  const who = [...(tm?.entries() ?? [])].filter(([, exp]) => exp > now).map(([uid]) => uid);
  useEffect(() => {
    if (!who.length) return;
    const t = setInterval(tick, 1000);
    return () => clearInterval(t);
  }, [who.length > 0]);
  const gid = store.channels.get(channelId)?.guild_id;
  const names = who.map((u) => store.displayName(u, gid));
  const text =
    names.length === 0
      ? ""
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length <= 3
          ? `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing…`
          : "Several people are typing…";
  return (
    <div class="typing" aria-live="polite">
      {text && <span class="dots" aria-hidden="true"><i /><i /><i /></span>}
      {text}
    </div>
  );
}
