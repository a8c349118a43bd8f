import { useEffect, useRef, useState } from "preact/hooks";
import { Icon } from "../icons";
import { store, useTopics } from "../store";
import { Avatar } from "./Avatar";
import { cameras, focusCamera, leaveVoice, saveSettings, setMeterVisible, settings, sharers, toggleCamera, toggleDeaf, toggleMute, toggleShare, voice, watch } from "../voice";

/** VoicePanel sits under the channel list while connected: status, mute, deafen, share, leave, volumes. */
export function VoicePanel() {
  useTopics("voice", "channels");
  const [showVolumes, setShowVolumes] = useState(false);
  if (!voice.channelId) return null;
  const c = store.channels.get(voice.channelId);
  const g = store.guilds.get(voice.guildId);
  const others = [...(store.voice.get(voice.guildId)?.values() ?? [])].filter((v) => v.channel_id === voice.channelId && v.user_id !== store.me?.id);
  return (
    <section class="voice-panel" aria-label="Voice connection">
      <div class="voice-status">
        <span class={"vs-dot " + voice.status} aria-hidden="true" />
        <div>
          <strong role="status">{voice.status === "connected" ? "Voice connected" : voice.status === "connecting" ? "Connecting…" : "Voice"}</strong>
          <div class="muted small">
            {c?.name} / {g?.name}
          </div>
        </div>
      </div>
      {voice.error && (
        <p class="error small" role="alert">
          {voice.error}
        </p>
      )}
      <div class="voice-buttons">
        <button type="button" class={"icon" + (voice.selfMute ? " on" : "")} aria-pressed={voice.selfMute} aria-label="Mute microphone" title="Mute" onClick={toggleMute}>
          <Icon name={voice.selfMute ? "micOff" : "mic"} />
        </button>
        <button type="button" class={"icon" + (voice.selfDeaf ? " on" : "")} aria-pressed={voice.selfDeaf} aria-label="Deafen" title="Deafen" onClick={toggleDeaf}>
          <Icon name={voice.selfDeaf ? "deafened" : "headphones"} />
        </button>
        <button type="button" class={"icon" + (voice.camera ? " on" : "")} aria-pressed={voice.camera} aria-label="Camera" title={voice.camera ? "Turn camera off" : "Turn camera on"} onClick={() => void toggleCamera()}>
          <Icon name={voice.camera ? "camera" : "cameraOff"} />
        </button>
        <button type="button" class={"icon" + (voice.sharing ? " on" : "")} aria-pressed={voice.sharing} aria-label="Share your screen" title="Share screen" onClick={() => void toggleShare()}>
          <Icon name="screen" />
        </button>
        <button type="button" class="icon" aria-expanded={showVolumes} aria-label="User volumes" title="User volumes" onClick={() => setShowVolumes(!showVolumes)}>
          <Icon name="volume" />
        </button>
        <button type="button" class="icon danger" aria-label="Disconnect from voice" title="Disconnect" onClick={leaveVoice}>
          <Icon name="hangup" />
        </button>
      </div>
      {showVolumes && (
        <div class="volumes">
          {others.length === 0 && <p class="muted small">Nobody else is here.</p>}
          {others.map((v) => {
            const name = store.displayName(v.user_id, voice.guildId);
            return (
              <label key={v.user_id} class="small">
                {name}
                <input
                  type="range"
                  min={0}
                  max={100}
                  value={settings.volumes[v.user_id] ?? 100}
                  aria-label={`Volume for ${name}`}
                  onInput={(e) => saveSettings({ volumes: { ...settings.volumes, [v.user_id]: Number(e.currentTarget.value) } })}
                />
              </label>
            );
          })}
        </div>
      )}
    </section>
  );
}

/** ShareVideo shows a watched screen share, or says it has no picture when frames stop. */
function ShareVideo({ stream }: { stream: MediaStream }) {
  const ref = useRef<HTMLVideoElement>(null);
  const frames = useLiveFrames(ref, stream);
  return (
    <div class="share-box">
      <video ref={ref} autoPlay playsInline muted aria-label="Screen share" class="screen-video" />
      {frames === "waiting" && (
        <p class="share-wait muted" role="status">
          Waiting for the picture…
        </p>
      )}
      {frames === "stale" && (
        <p class="share-off muted" role="status">
          No picture: the share has paused or ended.
        </p>
      )}
    </div>
  );
}

/** STALE_MS is how long a camera tile may go without a new frame before it shows the member's
 * initial instead: a camera turned off stops sending, and the last frame must not stay frozen. */
const STALE_MS = 1500;

/** Frames says whether a video is painting: "waiting" for its first frame (for up to STALE_MS),
 * "live", or "stale" (no new frame for STALE_MS). */
type Frames = "waiting" | "live" | "stale";

/** useLiveFrames plays stream in the video element and tells whether it is painting frames: live
 * from the first frame on, stale after STALE_MS without a new one (a camera turned off, a share
 * ended while the SFU keeps the publication: the track stays but no frame comes). The frame
 * count is kept in data-frames. */
function useLiveFrames(ref: { current: HTMLVideoElement | null }, stream: MediaStream): Frames {
  const [state, setState] = useState<Frames>("waiting");
  useEffect(() => {
    const v = ref.current;
    if (!v) return;
    if (v.srcObject !== stream) v.srcObject = stream;
    void v.play().catch(() => {});
    if (!("requestVideoFrameCallback" in v)) {
      // Without frame callbacks (older browsers) frames cannot be watched: show the video.
      setState("live");
      return;
    }
    setState("waiting");
    const start = performance.now();
    let last = 0;
    let frames = 0;
    let handle = 0;
    const onFrame = () => {
      last = performance.now();
      // The first frame shows at once, not at the next check.
      if (frames++ === 0) setState("live");
      handle = v.requestVideoFrameCallback(onFrame);
    };
    handle = v.requestVideoFrameCallback(onFrame);
    const t = setInterval(() => {
      const now = performance.now();
      setState(frames > 0 ? (now - last < STALE_MS ? "live" : "stale") : now - start < STALE_MS ? "waiting" : "stale");
      v.dataset.frames = String(frames);
    }, 250);
    return () => {
      clearInterval(t);
      v.cancelVideoFrameCallback(handle);
    };
  }, [stream]);
  return state;
}

/** CameraTile shows one camera: the video while frames arrive, else the member's initial. */
function CameraTile({ uid, stream, self }: { uid: string; stream: MediaStream; self?: boolean }) {
  const ref = useRef<HTMLVideoElement>(null);
  const live = useLiveFrames(ref, stream) === "live";
  const name = self ? "You" : store.displayName(uid, voice.guildId);
  const speaking = voice.speaking.has(uid);
  const focused = voice.focused === uid && !self;
  return (
    <figure class={"tile" + (speaking ? " speaking" : "") + (focused ? " focused" : "") + (live ? " live" : "")} data-user={self ? "me" : uid}>
      <video ref={ref} autoPlay playsInline muted class={self ? "mirror" : ""} aria-label={`${name}'s camera`} />
      {!live && (
        <span class="tile-off" aria-hidden="true">
          <Avatar uid={uid} name={self ? store.displayName(uid, voice.guildId) : name} class="big" />
        </span>
      )}
      <figcaption>
        {name}
        {!live && <span class="sr-only">, camera off</span>}
      </figcaption>
      {!self && (
        <button type="button" class="tile-focus" aria-pressed={focused} aria-label={focused ? `Show ${name}'s camera small` : `Show ${name}'s camera large`} onClick={() => focusCamera(focused ? "" : uid)} />
      )}
    </figure>
  );
}

/** VideoTiles is the camera grid of the voice channel the user is in: the self view while the
 * camera is on, and every member's camera the SFU forwards. */
export function VideoTiles() {
  useTopics("voice");
  if (!voice.channelId) return null;
  const remote = cameras();
  if (!remote.length && !voice.localCamera) return null;
  return (
    <section class={"tiles" + (voice.focused ? " has-focus" : "")} aria-label="Cameras">
      {voice.localCamera && <CameraTile key="me" uid={store.me?.id ?? ""} stream={voice.localCamera} self />}
      {remote.map((r) => (
        <CameraTile key={r.userId} uid={r.userId} stream={r.stream} />
      ))}
    </section>
  );
}

/** ScreenShares lists the shares in the current voice channel and shows the one being watched. */
export function ScreenShares() {
  useTopics("voice");
  if (!voice.channelId) return null;
  const who = sharers();
  if (!who.length && !voice.watching) return null;
  const watched = voice.remote.find((r) => r.userId === voice.watching && r.source === "screen");
  // A watched share that ended (unpublished, spec/voice.md 3.4.1) keeps its button, to stop
  // watching; a new share by the same member then shows without another click.
  const ended = !!voice.watching && !who.includes(voice.watching);
  return (
    <section class="screens" aria-label="Screen shares">
      <div class="screen-list">
        {(ended ? [...who, voice.watching] : who).map((u) => (
          <button type="button" key={u} aria-pressed={voice.watching === u} onClick={() => watch(voice.watching === u ? "" : u)}>
            {voice.watching === u ? "Stop watching" : "Watch"} {store.displayName(u, voice.guildId)}’s screen
          </button>
        ))}
      </div>
      {voice.watching &&
        (watched ? (
          <ShareVideo stream={watched.stream} />
        ) : (
          <p role="status" class="muted">
            {ended ? `${store.displayName(voice.watching, voice.guildId)}’s share has ended.` : "Waiting for the stream…"}
          </p>
        ))}
    </section>
  );
}

/** VoiceSettings is the voice part of the settings dialog. */
export function VoiceSettings() {
  useTopics("voice", "voice-level");
  const [devices, setDevices] = useState<MediaDeviceInfo[]>([]);
  const [capturing, setCapturing] = useState(false);
  useEffect(() => {
    navigator.mediaDevices?.enumerateDevices().then(setDevices, () => setDevices([]));
    setMeterVisible(true);
    return () => setMeterVisible(false);
  }, []);
  // The key listener is added in the click handler itself, so the very next key press is caught.
  const capture = useRef<((e: KeyboardEvent) => void) | null>(null);
  const stopCapture = () => {
    if (capture.current) window.removeEventListener("keydown", capture.current, { capture: true });
    capture.current = null;
    setCapturing(false);
  };
  const startCapture = () => {
    stopCapture();
    const on = (e: KeyboardEvent) => {
      e.preventDefault();
      e.stopPropagation();
      if (e.code !== "Escape") saveSettings({ pttKey: e.code });
      stopCapture();
    };
    capture.current = on;
    window.addEventListener("keydown", on, { capture: true });
    setCapturing(true);
  };
  useEffect(() => stopCapture, []);
  const inputs = devices.filter((d) => d.kind === "audioinput");
  const cams = devices.filter((d) => d.kind === "videoinput");
  const outputs = devices.filter((d) => d.kind === "audiooutput");
  const level = Math.max(0, Math.min(100, voice.inputLevel + 100));
  return (
    <section aria-labelledby="set-voice">
      <h3 id="set-voice">Voice</h3>
      <label>
        Input device
        <select value={settings.inputDevice} onChange={(e) => saveSettings({ inputDevice: e.currentTarget.value })}>
          <option value="">Default</option>
          {inputs.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Microphone ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label>
        Output device
        <select value={settings.outputDevice} onChange={(e) => saveSettings({ outputDevice: e.currentTarget.value })}>
          <option value="">Default</option>
          {outputs.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Speaker ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label>
        Camera
        <select value={settings.videoDevice} onChange={(e) => saveSettings({ videoDevice: e.currentTarget.value })}>
          <option value="">Default</option>
          {cams.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Camera ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Input mode</legend>
        <label class="radio">
          <input type="radio" name="vmode" checked={settings.mode === "vad"} onChange={() => saveSettings({ mode: "vad" })} /> Voice activity
        </label>
        <label class="radio">
          <input type="radio" name="vmode" checked={settings.mode === "ptt"} onChange={() => saveSettings({ mode: "ptt" })} /> Push to talk
        </label>
      </fieldset>
      {settings.mode === "ptt" && (
        <p>
          Push-to-talk key: <kbd>{settings.pttKey}</kbd>{" "}
          <button type="button" onClick={startCapture} aria-live="polite">
            {capturing ? "Press a key…" : "Change key"}
          </button>
        </p>
      )}
      <label>
        Input sensitivity ({settings.sensitivity} dB)
        <input type="range" min={-100} max={0} value={settings.sensitivity} onInput={(e) => saveSettings({ sensitivity: Number(e.currentTarget.value) })} />
      </label>
      {voice.channelId && (
        <div class="meter" role="meter" aria-label="Input level" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(level)}>
          <span style={{ width: level + "%" }} />
          <i style={{ left: settings.sensitivity + 100 + "%" }} />
        </div>
      )}
      <label class="check">
        <input type="checkbox" checked={settings.echoCancellation} onChange={(e) => saveSettings({ echoCancellation: e.currentTarget.checked })} /> Echo cancellation
      </label>
      <label class="check">
        <input type="checkbox" checked={settings.noiseSuppression} onChange={(e) => saveSettings({ noiseSuppression: e.currentTarget.checked })} /> Noise suppression
      </label>
      <label class="check">
        <input type="checkbox" checked={settings.autoGainControl} onChange={(e) => saveSettings({ autoGainControl: e.currentTarget.checked })} /> Automatic gain control
      </label>
    </section>
  );
}
