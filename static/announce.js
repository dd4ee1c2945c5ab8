// The instructor's announcement, on every page: a line under the header ("move on to §6").
//
// Only where the server runs the room's progress (`serve`): its health check lists the
// route. The page listens on `progress/announcements` with the learners' token, like any
// lesson's socket (connection.js: auth, heartbeat, reconnect); a page that holds no token
// hears nothing rather than asking for one, since no lesson needs it yet.

import { el } from "./dom.js";
import { Connection } from "./connection.js";

const ROUTE = "/progress/announcements";

/**
 * Show announcements in a banner after `header`, if the server makes any.
 *
 * @param {HTMLElement} header - the banner goes right after it
 * @returns {Promise<void>}
 */
export async function startAnnouncements(header) {
  let routes = [];
  try {
    const response = await fetch(new URL("healthz", location.href), { cache: "no-store" });
    routes = (await response.json()).routes ?? [];
  } catch {
    return; // no health answer: no announcements either
  }
  if (!routes.includes(ROUTE)) return;
  const banner = el("p", {
    id: "announcement", "data-testid": "announcement", class: "announcement", role: "status",
    hidden: true,
  });
  header.after(banner);
  const connection = new Connection(ROUTE.slice(1), {
    onEvent(event) {
      if (event?.type !== "progress.announcement") return;
      const text = event.announcement?.text ?? "";
      banner.textContent = text ? `From your instructor: ${text}` : "";
      banner.hidden = text === "";
    },
  });
  connection.start();
}
