// perms computes the current user's permissions in a channel, as the node does (spec CAPI-060),
// so the UI can hide actions the node would refuse. The node stays the authority.

import { store } from "./store";

/** Permission bits used by the UI (Discord's values). */
export const P = {
  CREATE_INSTANT_INVITE: 1n << 0n,
  ADMINISTRATOR: 1n << 3n,
  MANAGE_CHANNELS: 1n << 4n,
  MANAGE_GUILD: 1n << 5n,
  ADD_REACTIONS: 1n << 6n,
  VIEW_CHANNEL: 1n << 10n,
  SEND_MESSAGES: 1n << 11n,
  MANAGE_MESSAGES: 1n << 13n,
  READ_MESSAGE_HISTORY: 1n << 16n,
  CONNECT: 1n << 20n,
  SPEAK: 1n << 21n,
  MANAGE_ROLES: 1n << 28n,
};
const ALL = (1n << 53n) - 1n;

/** permissions returns the user's permission bits in a channel (or the guild when cid is empty); DMs allow all. */
export function permissions(gid: string, cid = ""): bigint {
  const g = store.guilds.get(gid);
  const me = store.me;
  if (!g || !me) return ALL;
  if (g.owner_id === me.id) return ALL;
  const m = store.members.get(gid)?.get(me.id);
  const roles = m?.roles ?? [];
  let p = 0n;
  for (const r of g.roles) if (r.id === gid || roles.includes(r.id)) p |= BigInt(r.permissions || "0");
  if (p & P.ADMINISTRATOR) return ALL;
  const c = cid ? store.channels.get(cid) : undefined;
  if (!c?.permission_overwrites) return p;
  const ow = c.permission_overwrites;
  const ev = ow.find((o) => o.type === 0 && o.id === gid);
  if (ev) p = (p & ~BigInt(ev.deny)) | BigInt(ev.allow);
  let allow = 0n;
  let deny = 0n;
  for (const o of ow) {
    if (o.type === 0 && o.id !== gid && roles.includes(o.id)) {
      allow |= BigInt(o.allow);
      deny |= BigInt(o.deny);
    }
  }
  p = (p & ~deny) | allow;
  const mine = ow.find((o) => o.type === 1 && o.id === me.id);
  if (mine) p = (p & ~BigInt(mine.deny)) | BigInt(mine.allow);
  return p;
}

/** can tells whether the user holds every bit of want in the channel. */
export function can(gid: string | undefined, cid: string, want: bigint): boolean {
  if (!gid) return true;
  return (permissions(gid, cid) & want) === want;
}
