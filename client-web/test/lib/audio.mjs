// audio holds what the voice tests need to measure push-to-talk latency in Chromium: a speech-like
// WAV file for the fake microphone (Chromium's own fake device beeps briefly twice a second, so
// whether a frame carries voice would depend on when the key is pressed), and a tap on the encoded
// audio frames of the client's RTCPeerConnection (WebRTC encoded transform, RTCRtpScriptTransform).
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** speechWav writes 4 s of a voiced, never silent signal (a 140 Hz ± 30 Hz harmonic tone with a
 * 3.5 Hz syllable-like envelope and a little noise; 48 kHz mono 16-bit PCM) into dir and returns
 * its path, for Chromium's --use-file-for-fake-audio-capture (which loops it). Noise suppression
 * keeps it: it is not stationary. */
export function speechWav(dir) {
  const rate = 48000;
  const n = rate * 4;
  const data = Buffer.alloc(n * 2);
  let phase = 0;
  let seed = 1;
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    phase += (2 * Math.PI * (140 + 30 * Math.sin(2 * Math.PI * 0.7 * t))) / rate;
    let s = 0;
    for (let k = 1; k < 12; k++) s += Math.sin(k * phase) / k;
    seed = (seed * 1103515245 + 12345) % 2147483648;
    s = s * 0.25 * (0.65 + 0.35 * Math.sin(2 * Math.PI * 3.5 * t)) + (seed / 2147483648 - 0.5) * 0.04;
    data.writeInt16LE(Math.round(Math.max(-1, Math.min(1, s)) * 32767), i * 2);
  }
  const h = Buffer.alloc(44);
  h.write("RIFF", 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVEfmt ", 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36);
  h.writeUInt32LE(data.length, 40);
  const path = join(dir, "speech.wav");
  writeFileSync(path, Buffer.concat([h, data]));
  return path;
}

/** tapAudioFrames is an init script (context.addInitScript) that records, for every encoded audio
 * frame of the page's RTCPeerConnections, when it passed and its size: frames leaving the encoder
 * of each connection's first audio transceiver (the microphone) in window.__hearthFrames.send, and
 * frames arriving at its audio receivers, after depacketisation and before the jitter buffer, in
 * window.__hearthFrames.recv, as [time, bytes] with time in ms since the epoch
 * (performance.timeOrigin + performance.now() in the transform's worker, so that two pages'
 * times compare). It also records every keydown's event time in window.__hearthKeys. Chromium
 * takes a transform only on a sender or receiver that has not carried media yet, so the tap is
 * set when the transceiver is created. The worker comes from a blob: URL, which the client's
 * Content Security Policy refuses: the page's context needs bypassCSP. */
export function tapAudioFrames() {
  const src = `onrtctransform = (ev) => {
    const { readable, writable, options } = ev.transformer;
    readable
      .pipeThrough(new TransformStream({ transform(f, c) { options.port.postMessage([performance.timeOrigin + performance.now(), f.data.byteLength]); c.enqueue(f); } }))
      .pipeTo(writable);
  };`;
  let worker;
  const frames = { send: [], recv: [] };
  window.__hearthFrames = frames;
  window.__hearthKeys = [];
  addEventListener("keydown", (e) => !e.repeat && window.__hearthKeys.push({ code: e.code, t: performance.timeOrigin + e.timeStamp }), true);
  const tapped = new WeakSet();
  const tap = (x, dir) => {
    if (tapped.has(x)) return;
    tapped.add(x);
    worker ??= new Worker(URL.createObjectURL(new Blob([src], { type: "text/javascript" })));
    const ch = new MessageChannel();
    ch.port1.onmessage = (e) => frames[dir].push(e.data);
    x.transform = new RTCRtpScriptTransform(worker, { port: ch.port2 }, [ch.port2]);
  };
  const add = RTCPeerConnection.prototype.addTransceiver;
  const micTapped = new WeakSet();
  RTCPeerConnection.prototype.addTransceiver = function (what, init) {
    const tr = add.call(this, what, init);
    if ((typeof what === "string" ? what : what.kind) === "audio" && !micTapped.has(this)) {
      micTapped.add(this);
      tap(tr.sender, "send");
      tap(tr.receiver, "recv");
      // Receivers of m-lines the SFU offers later are new in the track event.
      this.addEventListener("track", (e) => e.track.kind === "audio" && tap(e.receiver, "recv"));
    }
    return tr;
  };
}

/** VOICED is the smallest encoded frame counted as carrying voice: Opus sends the closed (disabled)
 * microphone's silence in frames of 3 to about 35 bytes, and speechWav's signal in 60 to 140. */
const VOICED = 50;

/** pushToTalk presses key on speaker's page presses times (the client in push-to-talk mode with
 * that key) and returns, per press, the milliseconds from the keydown event to the first voiced
 * frame leaving speaker's encoder (sent) and to the first one arriving at listener's page
 * (arrived). Each press waits for the microphone to be closed first and for both frames before
 * the release; a press whose audio does not arrive within timeout fails. */
export async function pushToTalk(speaker, listener, key, presses, timeout) {
  const out = [];
  for (let i = 0; i < presses; i++) {
    // Closed: the last frames sent are silence.
    await speaker.waitForFunction(
      (voiced) => {
        const f = window.__hearthFrames.send;
        return f.length >= 5 && f.slice(-5).every((x) => x[1] < voiced);
      },
      VOICED,
      { timeout },
    );
    await speaker.keyboard.down(key);
    const k = await speaker.evaluate((key) => window.__hearthKeys.findLast((e) => e.code === key).t, key);
    const first = (a) => window.__hearthFrames[a.dir].find((f) => f[0] >= a.k && f[1] >= a.voiced)?.[0];
    const sent = await (await speaker.waitForFunction(first, { dir: "send", k, voiced: VOICED }, { timeout })).jsonValue();
    const arrived = await (await listener.waitForFunction(first, { dir: "recv", k, voiced: VOICED }, { timeout })).jsonValue();
    await speaker.keyboard.up(key);
    out.push({ sent: sent - k, arrived: arrived - k });
  }
  return out;
}
