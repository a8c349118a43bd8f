// voice is the client side of spec/voice.md: gateway op 4 to join, the voice WebSocket
// (hearth-voice/1) for signaling, one RTCPeerConnection to the node's SFU, local voice activity
// detection or push-to-talk, per-user volume, mute/deafen, and screen share.

import { store } from "./store";
import { dispatchHooks, sendGateway } from "./session";

/** Voice settings, persisted in localStorage; the processing toggles default to on. */
export interface VoiceSettings {
  mode: "vad" | "ptt";
  /** pttKey is a KeyboardEvent.code, e.g. "KeyV" or "Backquote". */
  pttKey: string;
  /** sensitivity is the input level in dBFS above which voice activity opens the microphone. */
  sensitivity: number;
  echoCancellation: boolean;
  noiseSuppression: boolean;
  autoGainControl: boolean;
  /** inputDevice, outputDevice and videoDevice are device IDs; "" is the system default. */
  inputDevice: string;
  outputDevice: string;
  videoDevice: string;
  /** volumes maps user ID to playback volume in percent (0–200); absent is 100. */
  volumes: Record<string, number>;
}

const defaults: VoiceSettings = {
  mode: "vad",
  pttKey: "KeyV",
  sensitivity: -50,
  echoCancellation: true,
  noiseSuppression: true,
  autoGainControl: true,
  inputDevice: "",
  outputDevice: "",
  videoDevice: "",
  volumes: {},
};

export const settings: VoiceSettings = { ...defaults, ...JSON.parse(localStorage.getItem("hearth.voice") || "{}") };

export function saveSettings(patch: Partial<VoiceSettings>) {
  const micChanged = ["echoCancellation", "noiseSuppression", "autoGainControl", "inputDevice"].some((k) => k in patch);
  Object.assign(settings, patch);
  localStorage.setItem("hearth.voice", JSON.stringify(settings));
  applyVolumes();
  if (micChanged && conn) void conn.restartMic();
  // A new camera chosen while the camera is on replaces the one being sent.
  if ("videoDevice" in patch && conn && voice.camera) void conn.startCamera().catch((e) => {
    voice.error = "Camera unavailable: " + (e as Error).message;
    emit();
  });
  store.emit("voice");
}

/** A received track and what it carries, from the Track Map (op 105). */
export interface RemoteTrack {
  userId: string;
  source: string;
  stream: MediaStream;
  track: MediaStreamTrack;
}

/** Voice UI state; channelId "" means not in voice. */
export const voice = {
  guildId: "",
  channelId: "",
  status: "idle" as "idle" | "connecting" | "connected",
  selfMute: false,
  selfDeaf: false,
  /** speaking holds the users the SFU reports speaking, plus the local user from local detection. */
  speaking: new Set<string>(),
  /** inputLevel is the local microphone level in dBFS, for the sensitivity meter. */
  inputLevel: -100,
  sharing: false,
  /** camera is true while the user's camera is on; localCamera is its stream (the self view). */
  camera: false,
  localCamera: null as MediaStream | null,
  /** focused is the user whose camera tile is shown large (and asked for at the high layer), "" for none. */
  focused: "",
  /** watching is the user whose screen share is shown, "" for none. */
  watching: "",
  remote: [] as RemoteTrack[],
  error: "",
};

const emit = () => store.emit("voice");
/** debug logs voice signaling to the console when localStorage "hearth.debug" is "1". */
const debug = localStorage.getItem("hearth.debug") === "1";

/** Connection owns the voice WebSocket, the PeerConnection, the microphone and their timers. */
class Connection {
  ws: WebSocket | null = null;
  pc: RTCPeerConnection | null = null;
  mic: MediaStream | null = null;
  micSender: RTCRtpSender | null = null;
  screen: MediaStream | null = null;
  /** screenTr and screenAudioTr carry the screen share's video and audio, once created. */
  screenTr: RTCRtpTransceiver | null = null;
  screenAudioTr: RTCRtpTransceiver | null = null;
  cam: MediaStream | null = null;
  /** camTr is the camera's transceiver, kept for the session once created: turning the camera
   * off makes it inactive and on sendonly again, each with a Client Offer (spec/voice.md 3.4.1),
   * so the camera keeps its m-line (and its "camera" source). */
  camTr: RTCRtpTransceiver | null = null;
  audioCtx: AudioContext | null = null;
  analyser: AnalyserNode | null = null;
  hb: number | undefined;
  vadTimer: number | undefined;
  lastVoice = 0;
  pttDown = false;
  /** micOpen is whether the sent microphone track is open (see gate). */
  micOpen = false;
  trackMap: Array<{ user_id: string; stream_id: string; track_id: string; kind: string; source: string; mid: string }> = [];
  /** pendingTracks holds the latest track event of each receiving transceiver. */
  pendingTracks: RTCTrackEvent[] = [];
  /** streams gives each track event, per Track Map entry, its own MediaStream (see mapTracks). */
  streams = new WeakMap<RTCTrackEvent, { key: string; stream: MediaStream }>();
  /** offerAgain is set when a Client Offer was wanted while ours awaited its answer. */
  offerAgain = false;
  audioEls = new Map<string, HTMLAudioElement>();
  closed = false;
  queue: Promise<void> = Promise.resolve();
  /** meter is a clone of the microphone track for level metering: disabling the sent track
   * (voice activity closed, mute) must not silence the meter that decides when to open it. */
  meter: MediaStreamTrack | null = null;
  resumeDeadline = 0;
  ready = false;

  constructor(
    public endpoint: string,
    public token: string,
    public guildId: string,
  ) {}

  open(resume: boolean) {
    const url = this.endpoint.replace(/\/$/, "") + (this.endpoint.includes("?") ? "&" : "?") + "v=1";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let f: any;
      try {
        f = JSON.parse(ev.data as string);
      } catch {
        return;
      }
      // Frames are handled one at a time: each may await the PeerConnection.
      this.queue = this.queue.then(() => this.frame(f, resume)).catch((e) => {
        voice.error = "Voice signaling failed: " + (e as Error).message;
        emit();
      });
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws || this.closed) return;
      clearInterval(this.hb);
      this.ws = null;
      // Resumable: the SFU keeps the session 15 s (VOICE-040).
      if ((ev.code === 4009 || ev.code === 4015 || ev.code < 4000) && this.ready) {
        if (!this.resumeDeadline) this.resumeDeadline = Date.now() + 14000;
        if (Date.now() < this.resumeDeadline) {
          voice.status = "connecting";
          emit();
          setTimeout(() => !this.closed && this.open(true), 1000);
          return;
        }
      }
      if (ev.code === 4104 && iceRetries < MAX_ICE_RETRIES) {
        // ICE did not connect in time (VOICE-056), as on a congested network or machine: join
        // again from the start, a bounded number of times, before giving up.
        iceRetries++;
        rejoining = true;
        const { guildId, channelId } = voice;
        conn?.close();
        conn = null;
        voice.channelId = "";
        joinVoice(guildId, channelId);
        return;
      }
      voice.error = ev.code >= 4000 ? `Voice disconnected (${ev.code}${ev.reason ? ": " + ev.reason : ""})` : "";
      leaveVoice();
    };
  }

  send(op: number, d: unknown) {
    if (debug) console.info("voice >", op, JSON.stringify(d).slice(0, 200));
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op, d }));
  }

  async frame(f: { op: number; d: any }, resume: boolean) {
    if (debug) console.info("voice <", f.op, JSON.stringify(f.d).slice(0, 200), this.pc?.signalingState);
    switch (f.op) {
      case 8: {
        const iv = Number(f.d?.heartbeat_interval) || 13750;
        clearInterval(this.hb);
        this.hb = window.setInterval(() => this.send(3, { t: Date.now() }), iv);
        // video: true asks for a downlink bandwidth estimate, which layer selection needs (VOICE-059).
        const id = { server_id: this.guildId, user_id: store.me!.id, session_id: store.sessionId, token: this.token, video: true };
        this.send(resume ? 7 : 0, id);
        break;
      }
      case 2:
        await this.startMedia(f.d?.ice_servers ?? []);
        break;
      case 9:
        this.resumeDeadline = 0;
        voice.status = "connected";
        emit();
        break;
      case 4:
        if (this.pc && this.pc.signalingState === "have-local-offer") {
          await this.pc.setRemoteDescription({ type: "answer", sdp: f.d.sdp });
          this.ready = true;
          voice.status = "connected";
          emit();
          if (this.offerAgain) await this.clientOffer();
        }
        break;
      case 100:
        await this.serverOffer(f.d);
        break;
      case 103:
        if (this.pc && f.d?.candidate) {
          await this.pc.addIceCandidate({ candidate: f.d.candidate, sdpMid: f.d.sdp_mid, sdpMLineIndex: f.d.sdp_mline_index }).catch(() => {});
        }
        break;
      case 5:
        if (f.d?.user_id) {
          if (f.d.speaking) voice.speaking.add(f.d.user_id);
          else voice.speaking.delete(f.d.user_id);
          emit();
        }
        break;
      case 105:
        this.trackMap = f.d?.tracks ?? [];
        this.mapTracks();
        break;
      case 13:
        voice.speaking.delete(f.d?.user_id);
        emit();
        break;
      case 107:
        voice.channelId = f.d?.channel_id ?? voice.channelId;
        voice.speaking.clear();
        emit();
        break;
      case 109:
        // A refused Client Offer during glare needs no message: the Server Offer that follows
        // rolls ours back and we offer again (VOICE-053).
        if (this.pc?.signalingState === "have-local-offer") break;
        voice.error = String(f.d?.message ?? "voice error");
        emit();
        break;
    }
  }

  micConstraints(): MediaTrackConstraints {
    return {
      echoCancellation: settings.echoCancellation,
      noiseSuppression: settings.noiseSuppression,
      autoGainControl: settings.autoGainControl,
      deviceId: settings.inputDevice ? { exact: settings.inputDevice } : undefined,
    };
  }

  async startMedia(iceServers: RTCIceServer[]) {
    if (this.pc) return;
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
    this.pc = pc;
    // For tests and debugging: the statistics of the voice connection (getStats).
    (window as any).__hearthVoicePC = pc;
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") iceRetries = 0;
    };
    pc.onicecandidate = (e) => {
      this.send(103, e.candidate ? { candidate: e.candidate.candidate, sdp_mid: e.candidate.sdpMid, sdp_mline_index: e.candidate.sdpMLineIndex } : { candidate: "" });
    };
    pc.ontrack = (e) => {
      // An m-line the SFU sends on again fires ontrack again (3.4.1): its new event replaces the old.
      this.pendingTracks = this.pendingTracks.filter((p) => p.transceiver !== e.transceiver);
      this.pendingTracks.push(e);
      this.mapTracks();
    };
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({ audio: this.micConstraints() });
    } catch (e) {
      voice.error = "Microphone unavailable: " + (e as Error).message;
      emit();
    }
    const track = this.mic?.getAudioTracks()[0];
    const tr = pc.addTransceiver(track ?? "audio", { direction: "sendrecv", streams: this.mic ? [this.mic] : [] });
    this.micSender = tr.sender;
    this.startVAD();
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send(1, { protocol: "webrtc", data: { type: "offer", sdp: pc.localDescription!.sdp, sources: this.sources() } });
  }

  /** sources names what each of our sending transceivers carries (Hearth's "sources" addition). */
  sources(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of this.pc?.getTransceivers() ?? []) {
      if (!t.mid) continue;
      if (t.sender === this.micSender) out[t.mid] = "microphone";
      else if (t === this.camTr) out[t.mid] = "camera";
      else if (t === this.screenTr) out[t.mid] = "screen";
      else if (t === this.screenAudioTr) out[t.mid] = "screen_audio";
    }
    return out;
  }

  async serverOffer(d: { sdp: string; revision: number }) {
    const pc = this.pc;
    if (!pc) return;
    const hadOffer = pc.signalingState === "have-local-offer";
    if (hadOffer) await pc.setLocalDescription({ type: "rollback" });
    await pc.setRemoteDescription({ type: "offer", sdp: d.sdp });
    const ans = await pc.createAnswer();
    await pc.setLocalDescription(ans);
    this.send(101, { type: "answer", sdp: pc.localDescription!.sdp, revision: d.revision });
    this.ready = true;
    voice.status = "connected";
    emit();
    // Glare: our offer was rolled back; send it again (VOICE-053).
    if (hadOffer) await this.clientOffer();
  }

  /** enqueueOffer runs a Client Offer after the signaling frames already queued. */
  enqueueOffer(): Promise<void> {
    this.queue = this.queue.then(() => this.clientOffer());
    return this.queue;
  }

  async clientOffer() {
    const pc = this.pc;
    if (!pc) return;
    // An offer of ours awaits its answer: offer again once it is in (case 4), with what changed since.
    this.offerAgain = pc.signalingState === "have-local-offer";
    if (pc.signalingState !== "stable") return;
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    this.send(102, { type: "offer", sdp: pc.localDescription!.sdp, sources: this.sources() });
  }

  /** mapTracks pairs received tracks with the Track Map to know whose voice or screen each one is.
   * Each track event gets a MediaStream of its own, and a new one when the Track Map gives its
   * m-line another track, so that every <video> or <audio> starts afresh on it, rather than the
   * stream named in the SDP, from which the browser removes the track when the SFU stops the
   * m-line (3.4.1). */
  mapTracks() {
    const remote: RemoteTrack[] = [];
    for (const e of this.pendingTracks) {
      if (e.track.readyState === "ended") continue;
      const mid = e.transceiver?.mid;
      const info = this.trackMap.find((t) => (mid && t.mid === mid) || t.track_id === e.track.id);
      if (!info) continue;
      const key = [info.user_id, info.source, info.track_id].join("/");
      let s = this.streams.get(e);
      if (s?.key !== key) {
        s = { key, stream: new MediaStream([e.track]) };
        this.streams.set(e, s);
      }
      remote.push({ userId: info.user_id, source: info.source, stream: s.stream, track: e.track });
    }
    voice.remote = remote;
    for (const r of remote) {
      if (r.track.kind !== "audio") continue;
      const key = r.userId + ":" + r.source;
      let el = this.audioEls.get(key);
      if (!el) {
        el = new Audio();
        el.autoplay = true;
        this.audioEls.set(key, el);
      }
      if (el.srcObject !== r.stream) el.srcObject = r.stream;
      void el.play().catch(() => {});
    }
    applyVolumes();
    emit();
  }

  async restartMic() {
    if (!this.micSender) return;
    this.mic?.getTracks().forEach((t) => t.stop());
    try {
      this.mic = await navigator.mediaDevices.getUserMedia({ audio: this.micConstraints() });
      await this.micSender.replaceTrack(this.mic.getAudioTracks()[0]);
      this.startVAD();
    } catch (e) {
      voice.error = "Microphone unavailable: " + (e as Error).message;
      emit();
    }
  }

  /** startVAD measures the microphone and opens it only while voice is active (or push-to-talk is held). */
  startVAD() {
    clearInterval(this.vadTimer);
    this.meter?.stop();
    const track = this.mic?.getAudioTracks()[0];
    if (!track) return;
    this.meter = track.clone();
    this.meter.enabled = true;
    this.audioCtx ??= new AudioContext();
    void this.audioCtx.resume();
    const src = this.audioCtx.createMediaStreamSource(new MediaStream([this.meter]));
    this.analyser = this.audioCtx.createAnalyser();
    this.analyser.fftSize = 1024;
    src.connect(this.analyser);
    const buf = new Float32Array(this.analyser.fftSize);
    this.vadTimer = window.setInterval(() => {
      this.analyser!.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      const db = 10 * Math.log10(sum / buf.length + 1e-12);
      voice.inputLevel = Math.max(-100, db);
      if (db > settings.sensitivity) this.lastVoice = Date.now();
      if (!this.gate() && settingsOpen) store.emit("voice-level");
    }, 50);
  }

  /** gate opens the sent microphone track while the user speaks (voice activity) or holds the
   * push-to-talk key, and not while muted or deafened, and tells the SFU when that changes. It
   * runs on every level measurement and, so that push-to-talk does not wait up to a measurement
   * interval (50 ms), at once on the key's press and release and on mute and deafen. The track's
   * sender keeps encoding while it is closed (silence), so audio flows with the next 20 ms frame.
   * gate reports whether the state changed. */
  gate(): boolean {
    const active = settings.mode === "ptt" ? this.pttDown : Date.now() - this.lastVoice < 300;
    const open = active && !voice.selfMute && !voice.selfDeaf;
    const t = this.mic?.getAudioTracks()[0];
    if (t) t.enabled = open;
    if (open === this.micOpen) return false;
    this.micOpen = open;
    const me = store.me?.id;
    if (me) open ? voice.speaking.add(me) : voice.speaking.delete(me);
    this.send(5, { speaking: open ? 1 : 0, delay: 0, ssrc: 0 });
    emit();
    return true;
  }

  /** startShare shares the screen: simulcast video in three layers and, when the browser gives
   * it, the screen's audio. Like the camera's, the share's transceivers are created once per
   * session; a later share makes them send again (spec/voice.md 3.4.1), so the "screen" and
   * "screen_audio" sources keep their m-lines. */
  async startShare() {
    if (!this.pc) return;
    const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30, width: { max: 1920 }, height: { max: 1080 } }, audio: true });
    this.screen = s;
    const v = s.getVideoTracks()[0];
    const a = s.getAudioTracks()[0];
    let negotiate = false;
    if (this.screenTr) {
      await this.screenTr.sender.replaceTrack(v);
      negotiate = setSending(this.screenTr, true);
    } else {
      this.screenTr = this.pc.addTransceiver(v, {
        direction: "sendonly",
        streams: [s],
        sendEncodings: [
          { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 300_000 },
          { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 1_000_000 },
          { rid: "f", maxBitrate: 3_000_000 },
        ],
      });
      negotiate = true;
    }
    if (this.screenAudioTr) {
      await this.screenAudioTr.sender.replaceTrack(a ?? null);
      negotiate = setSending(this.screenAudioTr, !!a) || negotiate;
    } else if (a) {
      this.screenAudioTr = this.pc.addTransceiver(a, { direction: "sendonly", streams: [s] });
      negotiate = true;
    }
    v.onended = () => void this.stopShare();
    voice.sharing = true;
    emit();
    if (negotiate) await this.enqueueOffer();
  }

  /** stopShare ends the share: the capture stops, and the share's m-lines stop sending with a
   * Client Offer, which unpublishes the share (VOICE-068, VOICE-069: self_stream goes false). */
  async stopShare() {
    if (!this.pc || !this.screen) return;
    this.screen.getTracks().forEach((t) => t.stop());
    this.screen = null;
    voice.sharing = false;
    emit();
    let negotiate = false;
    for (const tr of [this.screenTr, this.screenAudioTr]) {
      if (!tr) continue;
      await tr.sender.replaceTrack(null);
      negotiate = setSending(tr, false) || negotiate;
    }
    if (negotiate) await this.enqueueOffer();
  }

  /** startCamera turns the camera on (or, while it is on, switches to the chosen camera):
   * simulcast VP8 in three layers (VOICE-066) on the camera transceiver, created the first time
   * and made to send again later, each time with a Client Offer. */
  async startCamera() {
    if (!this.pc) return;
    const cam = await navigator.mediaDevices.getUserMedia({
      video: {
        width: { ideal: 1280 },
        height: { ideal: 720 },
        frameRate: { ideal: 30 },
        deviceId: settings.videoDevice ? { exact: settings.videoDevice } : undefined,
      },
    });
    this.cam?.getTracks().forEach((t) => t.stop());
    this.cam = cam;
    const track = cam.getVideoTracks()[0];
    track.contentHint = "motion";
    voice.camera = true;
    voice.localCamera = cam;
    emit();
    if (this.camTr) {
      await this.camTr.sender.replaceTrack(track);
      if (setSending(this.camTr, true)) await this.enqueueOffer();
      return;
    }
    this.camTr = this.pc.addTransceiver(track, {
      direction: "sendonly",
      streams: [cam],
      sendEncodings: [
        { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
        { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
        { rid: "f", maxBitrate: 1_500_000 },
      ],
    });
    await this.enqueueOffer();
  }

  /** stopCamera turns the camera off: the device is released, and the camera's m-line stops
   * sending with a Client Offer, which unpublishes the camera (VOICE-068, VOICE-069: self_video
   * goes false and the other members' tiles go). */
  async stopCamera() {
    this.cam?.getTracks().forEach((t) => t.stop());
    this.cam = null;
    voice.camera = false;
    voice.localCamera = null;
    emit();
    if (!this.camTr) return;
    await this.camTr.sender.replaceTrack(null);
    if (setSending(this.camTr, false)) await this.enqueueOffer();
  }

  close() {
    this.closed = true;
    this.cam?.getTracks().forEach((t) => t.stop());
    clearInterval(this.hb);
    clearInterval(this.vadTimer);
    this.ws?.close(1000);
    this.pc?.close();
    this.mic?.getTracks().forEach((t) => t.stop());
    this.meter?.stop();
    this.screen?.getTracks().forEach((t) => t.stop());
    this.audioEls.forEach((el) => (el.srcObject = null));
    void this.audioCtx?.close();
  }
}

/** setSending makes a transceiver of ours send or stop sending, keeping its receiving half (the
 * microphone's is sendrecv, the others sendonly), and reports whether its direction changed, which
 * takes a Client Offer to tell the SFU (spec/voice.md 3.4.1). */
function setSending(tr: RTCRtpTransceiver, on: boolean): boolean {
  const recv = tr.direction === "sendrecv" || tr.direction === "recvonly";
  const dir: RTCRtpTransceiverDirection = on ? (recv ? "sendrecv" : "sendonly") : recv ? "recvonly" : "inactive";
  if (tr.direction === dir) return false;
  tr.direction = dir;
  return true;
}

let conn: Connection | null = null;
/** iceRetries counts the rejoins after ICE timeouts (4104) since voice last connected. */
let iceRetries = 0;
const MAX_ICE_RETRIES = 2;
/** rejoining is true from such a rejoin until a voice state shows the user in a channel again:
 * the failed session's "left voice" state, which may arrive meanwhile, must not end the new attempt. */
let rejoining = false;
/** settingsOpen makes the level meter update while the settings dialog shows it. */
let settingsOpen = false;
export function setMeterVisible(v: boolean) {
  settingsOpen = v;
}

function applyVolumes() {
  if (!conn) return;
  for (const [key, el] of conn.audioEls) {
    const uid = key.split(":")[0];
    el.volume = Math.min(1, (settings.volumes[uid] ?? 100) / 100);
    el.muted = voice.selfDeaf;
    const sink = (el as any).setSinkId;
    if (settings.outputDevice && sink) void sink.call(el, settings.outputDevice).catch(() => {});
  }
}

function sendState() {
  sendGateway(4, { guild_id: voice.guildId, channel_id: voice.channelId || null, self_mute: voice.selfMute, self_deaf: voice.selfDeaf });
}

/** joinVoice asks the node to put the user in a voice channel (or move them there). */
export function joinVoice(gid: string, cid: string) {
  if (voice.channelId === cid) return;
  voice.error = "";
  voice.guildId = gid;
  voice.channelId = cid;
  voice.status = "connecting";
  voice.speaking.clear();
  sendState();
  emit();
}

/** leaveVoice leaves the voice channel and releases the microphone and the PeerConnection. */
export function leaveVoice() {
  const gid = voice.guildId;
  rejoining = false;
  conn?.close();
  conn = null;
  if (gid && voice.channelId) sendGateway(4, { guild_id: gid, channel_id: null, self_mute: false, self_deaf: false });
  Object.assign(voice, { guildId: "", channelId: "", status: "idle", sharing: false, watching: "", remote: [], camera: false, localCamera: null, focused: "" });
  voice.speaking.clear();
  emit();
}

export function toggleMute() {
  voice.selfMute = !voice.selfMute;
  if (!voice.selfMute && voice.selfDeaf) voice.selfDeaf = false;
  if (voice.channelId) sendState();
  conn?.gate();
  applyVolumes();
  emit();
}

export function toggleDeaf() {
  voice.selfDeaf = !voice.selfDeaf;
  if (voice.channelId) sendState();
  conn?.gate();
  applyVolumes();
  emit();
}

export async function toggleShare() {
  try {
    if (voice.sharing) await conn?.stopShare();
    else await conn?.startShare();
  } catch (e) {
    voice.error = "Screen share failed: " + (e as Error).message;
    emit();
  }
}

/** toggleCamera turns the camera on or off. */
export async function toggleCamera() {
  try {
    if (voice.camera) await conn?.stopCamera();
    else await conn?.startCamera();
  } catch (e) {
    voice.error = "Camera unavailable: " + (e as Error).message;
    emit();
  }
}

/** focusCamera shows one member's camera large and asks the SFU for its high layer (VOICE-102);
 * the other cameras, and all of them with "", go back to the low layer (the default, VOICE-101). */
export function focusCamera(uid: string) {
  if (!conn) return;
  const prev = voice.focused;
  voice.focused = uid;
  if (prev && prev !== uid) conn.send(104, { user_id: prev, source: "camera", max_layer: "low" });
  if (uid) conn.send(104, { user_id: uid, source: "camera", max_layer: "high" });
  emit();
}

/** cameras lists the received camera tracks of the current voice channel, one per member. */
export function cameras(): RemoteTrack[] {
  return voice.remote.filter((r) => r.source === "camera" && r.track.kind === "video");
}

/** watch opts in to one member's screen share (VOICE-100), or out with "". */
export function watch(uid: string) {
  if (!conn) return;
  if (voice.watching && voice.watching !== uid) conn.send(108, { user_id: voice.watching, watch: false });
  voice.watching = uid;
  if (uid) {
    conn.send(108, { user_id: uid, watch: true });
    conn.send(104, { user_id: uid, source: "screen", max_layer: "high" });
  }
  emit();
}

/** sharers lists users in the current voice channel with a screen share. */
export function sharers(): string[] {
  const out = new Set<string>();
  for (const v of store.voice.get(voice.guildId)?.values() ?? []) if (v.channel_id === voice.channelId && v.self_stream) out.add(v.user_id);
  for (const t of conn?.trackMap ?? []) if (t.source === "screen") out.add(t.user_id);
  if (voice.sharing && store.me) out.delete(store.me.id);
  return [...out];
}

dispatchHooks.push((t, d) => {
  if (t === "VOICE_SERVER_UPDATE") {
    if (!voice.channelId || d.guild_id !== voice.guildId) return;
    if (conn && conn.ws && conn.guildId === d.guild_id && conn.ready) {
      // Same node: switch rooms on the same PeerConnection (VOICE-090).
      conn.token = d.token;
      conn.send(106, { token: d.token });
      return;
    }
    conn?.close();
    Object.assign(voice, { camera: false, localCamera: null, focused: "" });
    conn = new Connection(d.endpoint, d.token, d.guild_id);
    conn.open(false);
  } else if (t === "VOICE_STATE_UPDATE" && store.me && d.user_id === store.me.id && d.session_id === store.sessionId) {
    if (d.channel_id) rejoining = false;
    else if (voice.channelId && conn && !rejoining) {
      // Moved out or disconnected by a moderator.
      leaveVoice();
    }
  } else if (t === "READY") {
    // A fresh gateway session: voice state on the node is gone.
    if (voice.channelId) {
      conn?.close();
      conn = null;
      const { guildId, channelId } = voice;
      voice.channelId = "";
      joinVoice(guildId, channelId);
    }
  }
});

window.addEventListener("keydown", (e) => {
  if (conn && settings.mode === "ptt" && e.code === settings.pttKey && !isTyping(e)) {
    conn.pttDown = true;
    conn.gate();
  }
});
window.addEventListener("keyup", (e) => {
  if (conn && e.code === settings.pttKey) {
    conn.pttDown = false;
    conn.gate();
  }
});
window.addEventListener("blur", () => {
  if (!conn) return;
  conn.pttDown = false;
  conn.gate();
});

function isTyping(e: KeyboardEvent): boolean {
  const t = e.target as HTMLElement | null;
  return !!t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA") && settings.pttKey.startsWith("Key");
}
