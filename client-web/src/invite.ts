// invite reads invite links and codes pasted by the user.

/** parseInvite extracts an invite code from a pasted link ("https://host/invite/CODE") or a bare code.
 * Codes of guilds on other nodes are federation codes ("hearth:..." per spec/federation.md §6);
 * the client always hands the code to its own node, which joins over federation when needed. */
export function parseInvite(s: string): { code: string; origin: string } | null {
  const t = s.trim();
  if (!t) return null;
  try {
    const u = new URL(t);
    if (u.protocol === "http:" || u.protocol === "https:") {
      const m = /\/invite\/([^/?#]+)\/?$/.exec(u.pathname);
      return m ? { code: decodeURIComponent(m[1]), origin: u.origin } : null;
    }
  } catch {
    // not a URL: a bare code
  }
  return /^[A-Za-z0-9_:=-]+$/.test(t) ? { code: t, origin: location.origin } : null;
}
