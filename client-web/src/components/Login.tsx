import { useState } from "preact/hooks";
import { ApiError } from "../api";
import { login, register } from "../session";

/** Login is the first screen: log in, or register a new account on this node. */
export function Login() {
  const [mode, setMode] = useState<"login" | "register">("login");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      if (mode === "login") await login(username.trim(), password);
      else await register(username.trim().toLowerCase(), password);
    } catch (err) {
      const a = err as ApiError;
      const f = a.fields ?? {};
      setError(
        f.login || f.password || f.username
          ? Object.entries(f)
              .map(([k, v]) => (k === "login" || k === "_" ? v : `${k}: ${v}`))
              .join(" ")
          : a.message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{mode === "login" ? "Welcome back to Hearth" : "Create an account"}</h1>
        <p class="muted">{location.host}</p>
        <label>
          Username
          <input
            name="username"
            autoComplete="username"
            required
            minLength={2}
            maxLength={32}
            value={username}
            onInput={(e) => setUsername(e.currentTarget.value)}
            autofocus
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={mode === "login" ? "current-password" : "new-password"}
            required
            minLength={8}
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
          />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {mode === "login" ? "Log in" : "Register"}
        </button>
        <p>
          {mode === "login" ? "Need an account? " : "Already have an account? "}
          <button type="button" class="linkish" onClick={() => (setMode(mode === "login" ? "register" : "login"), setError(""))}>
            {mode === "login" ? "Register" : "Log in"}
          </button>
        </p>
      </form>
    </main>
  );
}
