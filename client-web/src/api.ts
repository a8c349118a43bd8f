// api is the REST client for the node's public client API (spec/client-api.md, Discord v10 shapes).

/** A user object. Remote users' usernames are "name@node". */
export interface User {
  id: string;
  username: string;
  global_name?: string | null;
  avatar?: string | null;
}

/** A role; permissions is a decimal string of Discord permission bits. */
export interface Role {
  id: string;
  name: string;
  color: number;
  hoist: boolean;
  position: number;
  permissions: string;
  mentionable?: boolean;
}

/** A permission overwrite on a channel; type 0 is a role, 1 a member. */
export interface Overwrite {
  id: string;
  type: number;
  allow: string;
  deny: string;
}

/** A channel: type 0 text, 1 DM, 2 voice, 3 group DM, 4 category. */
export interface Channel {
  id: string;
  type: number;
  guild_id?: string;
  name?: string;
  topic?: string | null;
  position?: number;
  parent_id?: string | null;
  last_message_id?: string | null;
  permission_overwrites?: Overwrite[];
  recipients?: User[];
}

/** A guild member; roles excludes @everyone. */
export interface Member {
  user: User;
  nick?: string | null;
  roles: string[];
  joined_at?: string;
  mute?: boolean;
  deaf?: boolean;
}

/** A presence as dispatched in GUILD_CREATE and PRESENCE_UPDATE. */
export interface Presence {
  user: { id: string };
  status: string;
  guild_id?: string;
}

/** A voice state (spec/voice.md); channel_id null means the user left voice. */
export interface VoiceState {
  guild_id?: string;
  channel_id: string | null;
  user_id: string;
  session_id?: string;
  self_mute?: boolean;
  self_deaf?: boolean;
  mute?: boolean;
  deaf?: boolean;
  self_stream?: boolean;
  self_video?: boolean;
  member?: Member;
}

/** A guild as received in GUILD_CREATE. */
export interface Guild {
  id: string;
  name: string;
  icon?: string | null;
  owner_id: string;
  roles: Role[];
  channels?: Channel[];
  members?: Member[];
  presences?: Presence[];
  voice_states?: VoiceState[];
  member_count?: number;
  unavailable?: boolean;
}

/** A reaction summary on a message. */
export interface Reaction {
  count: number;
  me: boolean;
  emoji: { id: string | null; name: string };
}

/** A message object. */
export interface Message {
  id: string;
  channel_id: string;
  guild_id?: string;
  author: User;
  member?: Partial<Member>;
  content: string;
  timestamp: string;
  edited_timestamp?: string | null;
  mention_everyone?: boolean;
  mentions?: User[];
  mention_roles?: string[];
  reactions?: Reaction[];
  pinned?: boolean;
  type?: number;
  nonce?: string | number | null;
  message_reference?: { message_id?: string; channel_id?: string; guild_id?: string } | null;
  referenced_message?: Message | null;
  attachments?: Attachment[];
}

/** An attachment of a message (spec/media.md §2.2). url and proxy_url are signed, expiring URLs;
 * proxy_url is the thumbnail for images and equals url otherwise. */
export interface Attachment {
  id: string;
  filename: string;
  size: number;
  url: string;
  proxy_url: string;
  content_type?: string;
  width?: number;
  height?: number;
}

/** An invite object. */
export interface Invite {
  code: string;
  guild?: { id: string; name: string };
  channel?: { id: string; name: string };
  max_age?: number;
  max_uses?: number;
  uses?: number;
  expires_at?: string | null;
}

/** ApiError carries Discord's error body: code, message and field errors. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}

const TOKEN_KEY = "hearth.token";

/** Api sends REST requests with the session token; base "" means the page's own origin. */
export class Api {
  token: string | null;
  /** onUnauthorized runs when the node answers 401, so the app can return to the login screen. */
  onUnauthorized: () => void = () => {};

  constructor(readonly base = "") {
    this.token = localStorage.getItem(TOKEN_KEY);
  }

  setToken(t: string | null) {
    this.token = t;
    if (t) localStorage.setItem(TOKEN_KEY, t);
    else localStorage.removeItem(TOKEN_KEY);
  }

  /** req performs one request; it retries once after a 429 with the advertised delay (capped). */
  async req<T>(method: string, path: string, body?: unknown, retried = false): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.Authorization = this.token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(this.base + "/api/v10" + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 0, "network error: " + (e as Error).message);
    }
    if (res.status === 204) return undefined as T;
    let data: any = null;
    const text = await res.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (res.ok) return data as T;
    if (res.status === 429 && !retried) {
      const after = Math.min(Number(data?.retry_after ?? 1), 10);
      await new Promise((r) => setTimeout(r, after * 1000));
      return this.req<T>(method, path, body, true);
    }
    if (res.status === 401 && this.token) this.onUnauthorized();
    const fields: Record<string, string> = {};
    collectFieldErrors(data?.errors, "", fields);
    throw new ApiError(res.status, Number(data?.code ?? 0), String(data?.message ?? res.statusText), fields);
  }

  /** upload sends a multipart request (spec/media.md §2: payload_json and files[n]) with
   * XMLHttpRequest, which, unlike fetch, reports upload progress. signal aborts it. */
  upload<T>(path: string, payload: unknown, files: File[], onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<T> {
    const form = new FormData();
    form.append("payload_json", JSON.stringify(payload));
    files.forEach((f, i) => form.append(`files[${i}]`, f, f.name));
    return new Promise<T>((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("POST", this.base + "/api/v10" + path);
      if (this.token) x.setRequestHeader("Authorization", this.token);
      x.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
      x.onerror = () => reject(new ApiError(0, 0, "network error during upload"));
      x.onabort = () => reject(new ApiError(0, 0, "upload cancelled"));
      x.onload = () => {
        let data: any = null;
        try {
          data = x.responseText ? JSON.parse(x.responseText) : null;
        } catch {
          data = null;
        }
        if (x.status >= 200 && x.status < 300) return resolve(data as T);
        if (x.status === 401 && this.token) this.onUnauthorized();
        const fields: Record<string, string> = {};
        collectFieldErrors(data?.errors, "", fields);
        reject(new ApiError(x.status, Number(data?.code ?? 0), String(data?.message ?? x.statusText), fields));
      };
      signal?.addEventListener("abort", () => x.abort());
      x.send(form);
    });
  }

  get<T>(p: string) {
    return this.req<T>("GET", p);
  }
  post<T>(p: string, b: unknown = {}) {
    return this.req<T>("POST", p, b);
  }
  patch<T>(p: string, b: unknown) {
    return this.req<T>("PATCH", p, b);
  }
  put<T>(p: string, b?: unknown) {
    return this.req<T>("PUT", p, b);
  }
  del<T>(p: string) {
    return this.req<T>("DELETE", p);
  }
}

/** collectFieldErrors flattens Discord's nested {"field":{"_errors":[...]}} into field → message. */
function collectFieldErrors(e: any, prefix: string, out: Record<string, string>) {
  if (!e || typeof e !== "object") return;
  for (const [k, v] of Object.entries(e)) {
    if (k === "_errors" && Array.isArray(v) && v.length) {
      out[prefix || "_"] = String((v[0] as any).message ?? (v[0] as any).code);
    } else {
      collectFieldErrors(v, prefix ? prefix + "." + k : k, out);
    }
  }
}

/** snowflakeCmp orders decimal snowflake strings numerically without BigInt. */
export function snowflakeCmp(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** snowflakeTime returns the creation time (ms since the Unix epoch) encoded in a snowflake. */
export function snowflakeTime(id: string): number {
  return Number(BigInt(id) >> 22n) + 1420070400000;
}
