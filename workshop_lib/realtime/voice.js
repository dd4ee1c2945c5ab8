// The voice page: talk with the course's local Realtime server (lesson 08).
//
// The conversation itself (microphone, playback, barge-in, transcript, log) is
// voice-core.js, which the notebook's VoiceWidget mounts too. What is the page's own is how it
// gets a key: a browser must never hold the long-lived token over the WebSocket, so it asks
// the server's small back-end route for a short-lived `ek_` key (POST, the token as a Bearer
// header on a token server) and opens the socket with that, as an app does with the real
// service's client secrets.

// Served at lessons/<lesson>/<file>: the course's shared modules are at ../../static/.
import { forgetToken, serverAuth, storedToken, tokenForm } from "../../static/auth.js";
import { wsUrl } from "../../static/socket.js";
import { VoiceProblem, mountVoice } from "./voice-core.js";

const MODEL = "workshop-local";
const KEY_ROUTE = "api/realtime/client_secret"; // relative: a proxy's prefix is kept

/**
 * Build the voice page inside `root`.
 *
 * @param {HTMLElement} root - the element to fill
 * @returns {() => void} unmount: stops the microphone, the audio and the connection
 */
export default function mountVoicePage(root) {
  // A token entered in the form is a click's worth of gesture: connect straight away.
  const auth = tokenForm(() => root.querySelector('[data-testid="voice-connect"]')?.click());

  async function getKey() {
    const mode = await serverAuth();
    const token = storedToken();
    if (mode === "token" && !token) {
      auth.show();
      throw new VoiceProblem("This server needs the workshop token to give out keys: enter " +
        "it above (ask your instructor).");
    }
    const headers = token && mode !== "none" ? { Authorization: `Bearer ${token}` } : {};
    let response;
    try {
      response = await fetch(KEY_ROUTE, { method: "POST", headers, cache: "no-store" });
    } catch (error) {
      throw new VoiceProblem(`The server did not answer (${error.message}): is it running? ` +
        "Start it, then press Connect.");
    }
    if (response.status === 401) {
      forgetToken();
      auth.show("The server refused the token.");
      throw new VoiceProblem("The server refused the token: enter the right one above.");
    }
    if (response.status === 404 || response.status === 405) {
      throw new VoiceProblem("This server gives out no short-lived keys (no " +
        `${KEY_ROUTE}): update workshop_lib and restart the server.`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // answered below
    }
    if (!response.ok || typeof body?.value !== "string") {
      throw new VoiceProblem(`The key route answered ${response.status} without a key: ` +
        "see the server's log, then press Connect.");
    }
    return body.value;
  }

  return mountVoice(root, {
    getKey,
    socketUrl: `${wsUrl("v1/realtime")}?model=${encodeURIComponent(MODEL)}`,
    extra: [auth.element],
  });
}
