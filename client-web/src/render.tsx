// render turns the markdown AST into Preact VNodes. Text is always passed as a child string
// (a DOM text node), never as HTML, and links keep only http(s) URLs.

import type { ComponentChildren, VNode } from "preact";
import { useState } from "preact/hooks";
import { type MdNode, parse, plainText, safeHref } from "./markdown";
import { highlight } from "./highlight";
import { store } from "./store";
import { selectChannel } from "./session";

function Spoiler({ children }: { children: ComponentChildren }) {
  const [open, setOpen] = useState(false);
  return (
    <span
      class={open ? "spoiler open" : "spoiler"}
      role="button"
      tabIndex={open ? -1 : 0}
      aria-label={open ? undefined : "Spoiler, press to reveal"}
      aria-expanded={open}
      onClick={() => setOpen(true)}
      onKeyDown={(e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          setOpen(true);
        }
      }}
    >
      <span aria-hidden={!open}>{children}</span>
    </span>
  );
}

function Code({ lang, v }: { lang: string; v: string }) {
  const toks = highlight(v, lang);
  return (
    <pre class="codeblock" data-lang={lang || undefined}>
      <code>{toks.map((t) => (t.k ? <span class={"tk-" + t.k}>{t.v}</span> : t.v))}</code>
    </pre>
  );
}

/** renderNodes renders AST nodes; gid names the guild for mention names and colours. */
export function renderNodes(nodes: MdNode[], gid?: string): VNode[] {
  return nodes.map((n, i) => renderNode(n, i, gid));
}

function renderNode(n: MdNode, key: number, gid?: string): VNode {
  switch (n.t) {
    case "text":
      return <>{n.v}</>;
    case "br":
      return <br key={key} />;
    case "bold":
      return <strong key={key}>{renderNodes(n.c, gid)}</strong>;
    case "italic":
      return <em key={key}>{renderNodes(n.c, gid)}</em>;
    case "underline":
      return <u key={key}>{renderNodes(n.c, gid)}</u>;
    case "strike":
      return <s key={key}>{renderNodes(n.c, gid)}</s>;
    case "spoiler":
      return <Spoiler key={key}>{renderNodes(n.c, gid)}</Spoiler>;
    case "code":
      return <code key={key} class="inline">{n.v}</code>;
    case "codeblock":
      return <Code key={key} lang={n.lang} v={n.v} />;
    case "quote":
      return <blockquote key={key}>{renderNodes(n.c, gid)}</blockquote>;
    case "link": {
      const href = safeHref(n.href);
      if (!href) return <>{n.href}</>;
      return (
        <a key={key} href={href} target="_blank" rel="noopener noreferrer nofollow ugc">
          {renderNodes(n.c, gid)}
        </a>
      );
    }
    case "everyone":
      return <span key={key} class="mention">{n.v}</span>;
    case "mention":
      if (n.kind === "channel") {
        const c = store.channels.get(n.id);
        return (
          <button key={key} type="button" class="mention linkish" onClick={() => c && selectChannel(c.id)}>
            #{c?.name ?? "unknown-channel"}
          </button>
        );
      }
      if (n.kind === "role") {
        const r = gid ? store.guilds.get(gid)?.roles.find((x) => x.id === n.id) : undefined;
        return <span key={key} class="mention">@{r?.name ?? "unknown-role"}</span>;
      }
      return (
        <span key={key} class={store.me?.id === n.id ? "mention me" : "mention"}>
          @{store.displayName(n.id, gid)}
        </span>
      );
  }
}

/** preview is a message's content as one line of plain text with mentions named, for reply and search previews. */
export function preview(content: string, gid?: string, max = 120): string {
  const t = plainText(parse(content), (kind, id) =>
    kind === "user"
      ? "@" + store.displayName(id, gid)
      : kind === "channel"
        ? "#" + (store.channels.get(id)?.name ?? "unknown-channel")
        : "@" + ((gid && store.guilds.get(gid)?.roles.find((r) => r.id === id)?.name) || "unknown-role"),
  );
  return t.length > max ? t.slice(0, max - 1) + "…" : t;
}
