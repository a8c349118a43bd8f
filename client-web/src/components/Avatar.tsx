import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import type { User } from "../api";
import { store } from "../store";
import { api } from "../session";

/** avatarURL is the URL of a user's current avatar on this node (spec/media.md §7), or null when
 * the user has none. The store's copy of the user wins over hint (say, a message's author), since
 * it is the latest the client has seen. */
export function avatarURL(uid: string, hint?: User | null): string | null {
  const u = store.users.get(uid) ?? hint;
  return u?.avatar ? `${api.base}/avatars/${uid}/${u.avatar}.png` : null;
}

/** iconURL is the URL of a guild's current icon on this node, or null when it has none. */
export function iconURL(gid: string): string | null {
  const h = store.guilds.get(gid)?.icon;
  return h ? `${api.base}/icons/${gid}/${h}.png` : null;
}

/** Avatar shows a user's avatar image, or the first letter of name on a coloured disc when the
 * user has none or the image does not load. Extra classes size it ("small", "big"); children
 * (a status dot) sit on top. It is decorative: the name is always given as text nearby. */
export function Avatar(props: { uid: string; name: string; hint?: User | null; class?: string; color?: string; children?: ComponentChildren }) {
  const url = avatarURL(props.uid, props.hint);
  const [failed, setFailed] = useState("");
  const img = url && failed !== url;
  return (
    <span
      class={"avatar" + (props.class ? " " + props.class : "") + (img ? " has-img" : "")}
      aria-hidden="true"
      data-avatar={img ? "image" : "initial"}
      style={!img && props.color ? { background: props.color } : undefined}
    >
      {img ? <img src={url} alt="" draggable={false} onError={() => setFailed(url)} /> : props.name.slice(0, 1).toUpperCase()}
      {props.children}
    </span>
  );
}
