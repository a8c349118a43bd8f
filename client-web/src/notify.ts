// Notifications, as on Discord: the tab's title counts what waits for the user (mentions and
// unread direct messages), and while the page is not focused each new mention or direct message
// shows as a desktop notification; clicking it opens the channel. Desktop notifications need the
// browser's permission, which a browser asks only in answer to a click: Settings has the button,
// and a switch to turn them off without revoking the permission.
import { isPrivate, store } from "./store";
import { preview } from "./render";
import { selectChannel } from "./session";
import type { Message } from "./api";

const BASE_TITLE = "Hearth";
const PREF = "hearth.notify";

/** supported tells whether this browser can show desktop notifications. */
export function supported(): boolean {
  return typeof window !== "undefined" && "Notification" in window;
}

/** permission is the browser's answer so far: "granted", "denied" or "default" (not asked). */
export function permission(): NotificationPermission {
  return supported() ? Notification.permission : "denied";
}

/** enabled tells whether desktop notifications are shown: permitted and not turned off. */
export function enabled(): boolean {
  return permission() === "granted" && localStorage.getItem(PREF) !== "off";
}

/** setEnabled turns desktop notifications on or off; turning them on asks the browser first. */
export async function setEnabled(on: boolean): Promise<void> {
  localStorage.setItem(PREF, on ? "on" : "off");
  if (on && permission() === "default") await Notification.requestPermission();
  store.emit("notify");
}

function updateTitle() {
  const n = store.pingCount();
  const t = n > 0 ? `(${n}) ${BASE_TITLE}` : BASE_TITLE;
  if (document.title !== t) document.title = t;
}

/** describe is a notification's title and body for a message. */
function describe(m: Message): { title: string; body: string } {
  const c = store.channels.get(m.channel_id);
  const gid = m.guild_id ?? c?.guild_id;
  const who = store.displayName(m.author.id, gid);
  let title = who;
  if (!isPrivate(c)) {
    title = `${who} (#${c?.name ?? "unknown-channel"}, ${store.guilds.get(gid ?? "")?.name ?? "a server"})`;
  } else if (c?.type === 3) {
    title = `${who} (${store.channelLabel(c)})`;
  }
  const files = m.attachments?.length ?? 0;
  const body = preview(m.content ?? "", gid) || (files ? `sent ${files === 1 ? "a file" : files + " files"}` : "");
  return { title, body };
}

function onPing() {
  const m = store.lastPing;
  if (!m || !enabled() || document.hasFocus()) return;
  const { title, body } = describe(m);
  // One notification per channel: a newer one replaces the last.
  const n = new Notification(title, { body, tag: m.channel_id });
  n.onclick = () => {
    window.focus();
    selectChannel(m.channel_id);
    n.close();
  };
}

/** startNotifications keeps the title's count and shows desktop notifications; call it once. */
export function startNotifications() {
  for (const topic of ["reads", "channels", "guilds"]) store.on(topic, updateTitle);
  store.on("ping", onPing);
  updateTitle();
}
