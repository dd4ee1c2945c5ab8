// A voice conversation with a Realtime-API server: microphone up, spoken answer down.
//
// The browser client's voice page (voice.js) and the notebook's VoiceWidget
// (workshop_lib/realtime/voice_widget.py) both mount this module, so it imports nothing: the
// widget's front end is this file's text with a few lines of glue, loaded where no other
// file of the client can be reached. Each caller says how to get a key and where to connect.
//
// What happens, in order:
// 1. Connect (a click: browsers start audio only after a gesture) asks the caller for a
//    short-lived key (`ek_...`, minted by the server's back-end route: the page never holds
//    the long-lived token) and opens the socket with the subprotocols "realtime" and
//    "openai-insecure-api-key.<key>", the way a browser connects to the real service;
// 2. session.update: PCM16 at 24 kHz both ways, server-side turn detection (server_vad);
// 3. the microphone goes through an AudioWorklet that resamples the context's rate (often
//    48 kHz) to 24 kHz PCM16 and hands over 100 ms chunks, each an input_audio_buffer.append;
// 4. response.output_audio.delta chunks are scheduled back to back on the audio clock;
// 5. barge-in: input_audio_buffer.speech_started while an answer still sounds stops it at
//    once and sends conversation.item.truncate with audio_end_ms = what was really played,
//    read from the audio clock, so the server cuts the answer's transcript to what was heard.
//
// Counters for tests and curious learners sit on the card as data attributes:
// data-samples-scheduled, data-ms-played, data-events (JSON: received events by type),
// data-sent (JSON: sent events by type), data-truncate-ms, data-key-kind, data-state.

export const RATE = 24000; // the API's audio/pcm: 24 kHz, mono, 16-bit little-endian
export const CHUNK_MS = 100;
const LEAD_S = 0.05; // the first chunk starts this far ahead: no click, no cut-off start
const MAX_LOG = 300; // log lines kept: a long conversation must not grow the page forever

// The worklet runs on the audio thread; a Blob URL keeps this module self-contained.
// Resampling is an area average (each output sample is the mean of the input it spans):
// a box low-pass before decimation, enough for speech to a VAD, and exact for 48k -> 24k.
export const WORKLET = `
class Pcm16Chunks extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { rate, chunk } = options.processorOptions;
    this.step = sampleRate / rate; // input samples per output sample
    this.sum = 0;
    this.filled = 0;
    this.chunk = chunk;
    this.out = new Int16Array(chunk);
    this.n = 0;
  }
  push(value) {
    const v = Math.max(-1, Math.min(1, value));
    this.out[this.n++] = v < 0 ? v * 0x8000 : v * 0x7fff;
    if (this.n === this.chunk) {
      this.port.postMessage(this.out.buffer, [this.out.buffer]);
      this.out = new Int16Array(this.chunk);
      this.n = 0;
    }
  }
  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0) return true;
    const frames = channels[0].length;
    for (let i = 0; i < frames; i++) {
      let x = 0;
      for (const channel of channels) x += channel[i];
      x /= channels.length;
      let left = 1;
      while (left > 1e-9) {
        const take = Math.min(left, this.step - this.filled);
        this.sum += x * take;
        this.filled += take;
        left -= take;
        if (this.filled >= this.step - 1e-9) {
          this.push(this.sum / this.step);
          this.sum = 0;
          this.filled = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("pcm16-chunks", Pcm16Chunks);
`;

/** A problem the learner can act on: its message says what to do. */
export class VoiceProblem extends Error {}

/**
 * Base64 of PCM16 samples, as input_audio_buffer.append carries them.
 *
 * @param {ArrayBuffer} buffer - Int16 samples (little-endian: every browser's platform)
 * @returns {string}
 */
export function pcmToBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Samples as floats in [-1, 1) from a base64 PCM16 delta.
 *
 * @param {string} text
 * @returns {Float32Array}
 */
export function base64ToFloats(text) {
  const binary = atob(text);
  const samples = new Float32Array(binary.length >> 1);
  for (let i = 0; i < samples.length; i++) {
    const value = binary.charCodeAt(2 * i) | (binary.charCodeAt(2 * i + 1) << 8);
    samples[i] = (value >= 0x8000 ? value - 0x10000 : value) / 0x8000;
  }
  return samples;
}

/**
 * What to tell a learner when getUserMedia fails, by the browser's error name.
 *
 * @param {Error} error
 * @returns {string}
 */
export function microphoneProblem(error) {
  const advice = {
    NotAllowedError: "The microphone was refused: allow it for this page (the icon in the " +
      "address bar), then press Connect again.",
    SecurityError: "The microphone was refused: allow it for this page (the icon in the " +
      "address bar), then press Connect again.",
    NotFoundError: "No microphone was found: plug one in (or choose one in the system's " +
      "sound settings), then press Connect again.",
    NotReadableError: "The microphone is busy or blocked by the system: close other apps " +
      "that use it, then press Connect again.",
    OverconstrainedError: "This microphone cannot record as asked: choose another one, " +
      "then press Connect again.",
  }[error?.name];
  return advice ?? `The microphone could not start (${error?.name}: ${error?.message}).`;
}

/**
 * Why this page gets no microphone, or null if it may ask for one.
 *
 * @param {Window} [win=window]
 * @returns {string | null}
 */
export function insecureProblem(win = window) {
  if (win.isSecureContext && win.navigator.mediaDevices?.getUserMedia) return null;
  const { protocol, host, port } = win.location;
  return `No microphone here: getUserMedia needs a secure context, and this page is on ` +
    `${protocol}//${host}, plain http on a host that is not localhost. Open it as ` +
    `http://localhost${port ? ":" + port : ""} (an ssh tunnel: ssh -L ${port || 80}:localhost:` +
    `${port || 80} ...) or over https.`;
}

/** One line per element: a tiny DOM builder (this module imports nothing). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key in node && !key.includes("-")) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

function clock(date = new Date()) {
  return date.toTimeString().slice(0, 8) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

/** The voice card's elements, mounted in `root`; `extra` goes under the status. */
function voiceCard(root, extra) {
  const status = h("output", { class: "status voice-status", "data-testid": "voice-status",
    role: "status", text: "Press Connect, then speak." });
  const problem = h("p", { class: "voice-problem", "data-testid": "voice-problem",
    role: "alert", hidden: true });
  const connectButton = h("button", { type: "button", "data-testid": "voice-connect",
    text: "Connect" });
  const muteButton = h("button", { type: "button", class: "secondary",
    "data-testid": "voice-mute", text: "Mute", disabled: true });
  const stopButton = h("button", { type: "button", class: "secondary",
    "data-testid": "voice-stop", text: "Stop", disabled: true });
  const transcript = h("ol", { class: "voice-transcript", "data-testid": "voice-transcript",
    "aria-live": "polite", "aria-label": "Transcript" });
  const log = h("ol", { class: "realtime-events voice-events", "data-testid": "voice-events",
    role: "log", "aria-label": "Events" });
  const card = h("section", { class: "card voice", "data-testid": "voice" },
    h("h1", { text: "Voice" }),
    h("p", { text: "Speak; the server hears when you stop (server VAD) and answers aloud. " +
      "Talk over the answer to interrupt it." }),
    status, problem, ...extra,
    h("div", { class: "row" }, connectButton, muteButton, stopButton),
    h("h2", { text: "Transcript" }), transcript,
    h("h2", { text: "Events" }), log);
  root.replaceChildren(card);
  return { card, status, problem, connectButton, muteButton, stopButton, transcript, log };
}

/** `log`'s lines: one per event, or per run of events of one type (its `addLog`). */
function eventLog(log) {
  return function addLog(direction, event) {
    // Consecutive events of one type share a line ("×12"): audio goes up ten times a
    // second and comes down in bursts, which would push everything else out of sight.
    const last = log.lastElementChild;
    if (last && last.dataset.type === event.type && last.dataset.direction === direction) {
      const times = Number(last.dataset.times) + 1;
      last.dataset.times = times;
      last.querySelector(".event-detail").textContent = `×${times}`;
      last.querySelector(".event-time").textContent = clock();
      return;
    }
    const ids = [event.item_id && `item=${event.item_id}`,
      event.response_id && `response=${event.response_id}`,
      event.response?.id && `response=${event.response.id}`,
      event.item?.id && `item=${event.item.id}`].filter(Boolean).join(" ");
    let detail = "";
    if (event.type === "error") detail = `${event.error?.code}: ${event.error?.message}`;
    else if (event.type === "response.done") detail = event.response?.status ?? "";
    else if (event.type === "conversation.item.truncate" ||
      event.type === "conversation.item.truncated") detail = `audio_end_ms=${event.audio_end_ms}`;
    else if (event.audio_start_ms !== undefined) detail = `audio_start_ms=${event.audio_start_ms}`;
    else if (event.audio_end_ms !== undefined) detail = `audio_end_ms=${event.audio_end_ms}`;
    log.append(h("li", { class: `event ${direction === "↑" ? "sent" : "received"}`,
      "data-type": event.type, "data-direction": direction, "data-times": "1" },
      h("span", { class: "event-time", text: clock() }),
      h("span", { class: "event-dir", text: direction }),
      h("code", { class: "event-type", text: event.type }),
      h("span", { class: "event-ids", text: ids }),
      h("span", { class: "event-detail", text: detail })));
    while (log.children.length > MAX_LOG) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
  };
}

/** The transcript: one line per conversation item, the speaker's words as they come. */
function transcriptLines(list) {
  const rows = new Map(); // line by item id
  return {
    /** Where `itemId`'s words go: its line's text, the line made on first use. */
    said(itemId, who) {
      let row = rows.get(itemId);
      if (!row) {
        row = h("li", { class: `turn ${who}`, "data-item": itemId },
          h("span", { class: "who", text: who === "user" ? "you" : "answer" }),
          h("span", { class: "said" }));
        rows.set(itemId, row);
        list.append(row);
      }
      return row.querySelector(".said");
    },
    /** `itemId`'s line, if it has one. */
    row: (itemId) => rows.get(itemId),
  };
}

/** The session this page asks for: PCM16 at RATE both ways, server-side turn detection. */
function sessionUpdate() {
  return { type: "session.update", session: {
    type: "realtime",
    output_modalities: ["audio"],
    audio: {
      input: { format: { type: "audio/pcm", rate: RATE },
        turn_detection: { type: "server_vad" } },
      output: { format: { type: "audio/pcm", rate: RATE } },
    },
  } };
}

/**
 * Mount the voice conversation inside `root`.
 *
 * @param {HTMLElement} root
 * @param {object} options
 * @param {() => Promise<string>} options.getKey - a short-lived key; throws VoiceProblem
 * @param {string} options.socketUrl - the ws:/wss: address, with ?model=...
 * @param {Node[]} [options.extra] - shown under the status (the page's token form)
 * @param {(stats: object) => void} [options.onStats] - the counters, twice a second
 * @returns {() => void} unmount: stops the microphone, the audio and the connection
 */
export function mountVoice(root, { getKey, socketUrl, extra = [], onStats = null }) {
  const { card, status, problem, connectButton, muteButton, stopButton, transcript, log } =
    voiceCard(root, extra);

  // Everything one connection holds; reset by stop().
  let ctx = null; // AudioContext: the microphone's graph and the playback's clock
  let stream = null; // the microphone's MediaStream
  let worklet = null;
  let socket = null;
  let muted = false;
  let stopped = true;
  let statsTimer = 0;
  let nextTime = 0; // context time where the next chunk of answer starts
  const playing = new Map(); // item_id -> { contentIndex, segments, sources, cut }
  const received = {};
  const sent = {};
  const addLog = eventLog(log);
  const lines = transcriptLines(transcript);
  let samplesScheduled = 0;
  let truncateMs = null;

  function setState(state) {
    card.dataset.state = state;
  }
  setState("idle");
  showCounters();

  function showProblem(text) {
    problem.textContent = text;
    problem.hidden = !text;
  }

  function count(table, type) {
    table[type] = (table[type] ?? 0) + 1;
  }

  function send(event) {
    if (socket?.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify(event));
    count(sent, event.type);
    addLog("↑", event);
  }

  // -- playback -------------------------------------------------------------------------------

  /** The context time of what the listener hears now (the output's latency taken off). */
  function heardTime() {
    const stamp = ctx.getOutputTimestamp?.();
    if (stamp && stamp.contextTime > 0) return stamp.contextTime;
    return Math.max(0, ctx.currentTime - (ctx.outputLatency || ctx.baseLatency || 0));
  }

  /** Samples of an item played so far, on the audio clock. */
  function playedSamples(item) {
    const now = heardTime();
    let n = 0;
    for (const { start, samples } of item.segments) {
      n += Math.max(0, Math.min(samples, Math.floor((now - start) * RATE)));
    }
    return n;
  }

  function msPlayed() {
    if (!ctx) return Number(card.dataset.msPlayed || 0);
    let n = 0;
    for (const item of playing.values()) n += item.cut ?? playedSamples(item);
    return Math.floor((n * 1000) / RATE);
  }

  function schedule(event) {
    let item = playing.get(event.item_id);
    if (!item) {
      item = { contentIndex: event.content_index ?? 0, segments: [], sources: [], cut: null };
      playing.set(event.item_id, item);
    }
    if (item.cut !== null) return; // interrupted: its late chunks are not played
    const samples = base64ToFloats(event.delta);
    if (samples.length === 0) return;
    const buffer = ctx.createBuffer(1, samples.length, RATE); // the context resamples it
    buffer.copyToChannel(samples, 0);
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(ctx.destination);
    const start = Math.max(nextTime, ctx.currentTime + LEAD_S);
    source.start(start);
    nextTime = start + samples.length / RATE;
    item.segments.push({ start, samples: samples.length });
    item.sources.push(source);
    samplesScheduled += samples.length;
    showCounters();
  }

  /** Whether some answer is still sounding (or waiting to sound). */
  function sounding() {
    return ctx !== null && nextTime > heardTime() &&
      [...playing.values()].some((item) => item.cut === null && item.segments.length > 0);
  }

  /** Stop every answer now; truncate the one the speaker talked over. */
  function interrupt() {
    for (const [itemId, item] of playing) {
      if (item.cut !== null || item.segments.length === 0) continue;
      const played = playedSamples(item);
      const total = item.segments.reduce((sum, s) => sum + s.samples, 0);
      item.cut = played;
      for (const source of item.sources) {
        try {
          source.stop();
        } catch {
          // never started: nothing to stop
        }
        source.disconnect();
      }
      item.sources = [];
      if (played < total) {
        truncateMs = Math.floor((played * 1000) / RATE);
        send({ type: "conversation.item.truncate", item_id: itemId,
          content_index: item.contentIndex, audio_end_ms: truncateMs });
        // The words never heard are struck through: the server forgets them too.
        lines.row(itemId)?.classList.add("cut");
        for (const word of lines.row(itemId)?.querySelectorAll("[data-at]") ?? []) {
          if (Number(word.dataset.at) >= played) word.classList.add("unheard");
        }
      }
    }
    nextTime = 0;
    showCounters();
  }

  function showCounters() {
    card.dataset.samplesScheduled = samplesScheduled;
    card.dataset.msPlayed = msPlayed();
    card.dataset.events = JSON.stringify(received);
    card.dataset.sent = JSON.stringify(sent);
    if (truncateMs !== null) card.dataset.truncateMs = truncateMs;
  }

  function stats() {
    return { samples_scheduled: samplesScheduled, ms_played: msPlayed(),
      events: { ...received }, sent: { ...sent }, truncate_ms: truncateMs,
      state: card.dataset.state };
  }

  // -- the server's events --------------------------------------------------------------------

  function onEvent(event) {
    count(received, event.type);
    addLog("↓", event);
    switch (event.type) {
      case "session.created":
        send(sessionUpdate());
        break;
      case "session.updated":
        if (card.dataset.state !== "live") {
          setState("live");
          status.textContent = "Listening: speak now.";
          muteButton.disabled = false;
        }
        break;
      case "input_audio_buffer.speech_started":
        if (sounding()) interrupt();
        lines.said(event.item_id, "user").textContent = "(speaking…)";
        status.textContent = "Hearing you…";
        break;
      case "input_audio_buffer.speech_stopped":
        lines.said(event.item_id, "user").textContent = "(speech ended)";
        break;
      case "input_audio_buffer.committed":
        lines.said(event.item_id, "user").textContent = "(speech: the local server does not " +
          "recognize words)";
        break;
      case "conversation.item.input_audio_transcription.completed":
        lines.said(event.item_id, "user").textContent = event.transcript;
        break;
      case "response.created":
        status.textContent = "Answering…";
        break;
      case "response.output_audio.delta":
        schedule(event);
        break;
      case "response.output_audio_transcript.delta":
      case "response.output_text.delta": {
        // Each word comes just before the audio that says it: remember where in the audio.
        const at = playing.get(event.item_id)?.segments.reduce((n, s) => n + s.samples, 0) ?? 0;
        lines.said(event.item_id, "assistant")
          .append(h("span", { "data-at": at, text: event.delta }));
        break;
      }
      case "conversation.item.truncated":
        lines.row(event.item_id)?.setAttribute("title",
          `interrupted after ${(event.audio_end_ms / 1000).toFixed(1)} s: the server keeps ` +
          "only the words heard");
        break;
      case "response.done":
        status.textContent = event.response?.status === "completed" ? "Listening: speak now."
          : `Answer ${event.response?.status}; listening.`;
        break;
      case "error":
        showProblem(`${event.error?.code ?? "error"}: ${event.error?.message ?? ""}`);
        break;
      default:
    }
  }

  // -- connecting -----------------------------------------------------------------------------

  async function connect() {
    stop("");
    stopped = false;
    showProblem("");
    connectButton.disabled = true;
    stopButton.disabled = false;
    setState("connecting");
    statsTimer = setInterval(() => {
      showCounters();
      onStats?.(stats());
    }, 500);
    // Made in the click: a context made later starts suspended (the autoplay rule).
    ctx = new AudioContext();
    ctx.resume();
    const mine = ctx;
    try {
      const insecure = insecureProblem();
      if (insecure) throw new VoiceProblem(insecure);
      status.textContent = "Asking the server for a short-lived key…";
      const key = await getKey();
      if (mine !== ctx) return; // stopped meanwhile
      card.dataset.keyKind = key.startsWith("ek_") ? "ephemeral" : "other";
      status.textContent = "Starting the microphone…";
      try {
        stream = await navigator.mediaDevices.getUserMedia({
          audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true,
            autoGainControl: true },
        });
      } catch (error) {
        throw new VoiceProblem(microphoneProblem(error));
      }
      if (mine !== ctx) return;
      const url = URL.createObjectURL(new Blob([WORKLET], { type: "text/javascript" }));
      try {
        await ctx.audioWorklet.addModule(url);
      } finally {
        URL.revokeObjectURL(url);
      }
      if (mine !== ctx) return;
      // No outputs: a sink the context runs for its own sake, silent, never played back.
      worklet = new AudioWorkletNode(ctx, "pcm16-chunks", { numberOfInputs: 1,
        numberOfOutputs: 0, processorOptions: { rate: RATE, chunk: (RATE * CHUNK_MS) / 1000 } });
      // Muted, the track gives silence, which still goes up: the server's clock runs on
      // and a turn cut by the mute ends as a turn does, after silence_duration_ms.
      worklet.port.onmessage = ({ data }) => {
        if (card.dataset.state === "live") {
          send({ type: "input_audio_buffer.append", audio: pcmToBase64(data) });
        }
      };
      ctx.createMediaStreamSource(stream).connect(worklet);
      status.textContent = "Connecting…";
      open(key);
    } catch (error) {
      if (mine !== ctx) return;
      const text = error instanceof VoiceProblem ? error.message
        : `Could not start: ${error?.message ?? error}`;
      stop(text);
    }
  }

  function open(key) {
    // The key rides in a subprotocol (a browser's WebSocket sets no headers); the server
    // answers "realtime" alone.
    const ws = new WebSocket(socketUrl, ["realtime", `openai-insecure-api-key.${key}`]);
    socket = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      opened = true;
    });
    ws.addEventListener("message", ({ data }) => {
      if (ws !== socket) return;
      let event;
      try {
        event = JSON.parse(data);
      } catch {
        showProblem("The server sent something that is not JSON: is this a Realtime server?");
        return;
      }
      onEvent(event);
    });
    ws.addEventListener("close", ({ code, reason }) => {
      if (ws !== socket) return;
      socket = null;
      stop(opened ? `Disconnected (${code}${reason ? " " + reason : ""}): press Connect to ` +
        "start again." : "The server did not take the key (expired, or the server restarted?) " +
        "or is not running: press Connect for a new key.");
    });
  }

  /** Stop the microphone, the audio and the connection; `why` goes on the problem line. */
  function stop(why = "") {
    const wasStopped = stopped;
    stopped = true;
    clearInterval(statsTimer);
    statsTimer = 0;
    showCounters(); // ms played, read from the clock before it goes
    for (const item of playing.values()) {
      if (item.cut === null) item.cut = ctx ? playedSamples(item) : 0;
    }
    if (socket) {
      const ws = socket;
      socket = null;
      ws.close(1000, "stopped");
    }
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    worklet?.port.close();
    worklet = null;
    ctx?.close();
    ctx = null;
    nextTime = 0;
    muted = false;
    card.dataset.muted = false;
    muteButton.textContent = "Mute";
    muteButton.disabled = true;
    stopButton.disabled = true;
    connectButton.disabled = false;
    if (why) showProblem(why);
    if (!wasStopped) {
      setState("stopped");
      status.textContent = "Stopped: press Connect to talk again.";
    }
    onStats?.(stats());
  }

  connectButton.addEventListener("click", () => connect());
  muteButton.addEventListener("click", () => {
    muted = !muted;
    stream?.getAudioTracks().forEach((track) => {
      track.enabled = !muted;
    });
    card.dataset.muted = muted;
    muteButton.textContent = muted ? "Unmute" : "Mute";
    status.textContent = muted ? "Muted: the server hears silence." : "Listening: speak now.";
  });
  stopButton.addEventListener("click", () => stop(""));

  return () => stop("");
}
