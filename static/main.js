// The browser client's entry point: a tiny hash router.
//
// Each lesson is one page, chosen by the URL fragment (#echo, #ball, #chat), so the
// server serves a single index.html and a notebook can link straight to a lesson. The
// fragment may also carry a token after the page's name, "#chat&token=T" (auth.js): it is
// moved into this tab's storage and out of the address bar before any page looks at it.

import { parseFragment, takeTokenFromUrl } from "./auth.js";
import { mountBallPage } from "./ball.js";
import { mountChatPage } from "./chat.js";
import { el } from "./dom.js";
import { mountEchoPage } from "./echo.js";
import { mountRoomPage } from "./room.js";

/**
 * The lesson pages, by their #fragment. To add a page: write `mountXPage(root)` in its
 * own module (it returns an unmount function), import it above, add it here, and add
 * its link to the <nav> in index.html (and to LESSON_PAGES in workshop_lib/links.py).
 */
const PAGES = {
  echo: { title: "Echo", mount: mountEchoPage },
  ball: { title: "Bouncing ball", mount: mountBallPage },
  chat: { title: "Chat", mount: mountChatPage },
  // Not a lesson but the instructor's overview (no LESSON_PAGES entry: the server's banner
  // prints its link itself, without a token, which the page does not need).
  room: { title: "Room", mount: mountRoomPage },
};

// The page an empty fragment shows: the first lesson, so "/" is immediately useful.
const DEFAULT_PAGE = "echo";

const app = document.getElementById("app");
let unmount = null;

/** Show the page named by the current fragment, after unmounting the previous one. */
function route() {
  takeTokenFromUrl();
  const name = parseFragment(location.hash).page || DEFAULT_PAGE;
  // Own properties only: "#toString" must not find Object.prototype.toString.
  const page = Object.hasOwn(PAGES, name) ? PAGES[name] : null;

  unmount?.(); // close the old page's connections before the new page opens its own
  unmount = page ? page.mount(app) : showIndex(name);

  document.title = `${page ? page.title : "Pages"} · WebSocket Basics Workshop`;
  for (const link of document.querySelectorAll(".site-nav a")) {
    if (page && link.dataset.page === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

/** An index of the pages, shown for a fragment that names none of them. */
function showIndex(unknown) {
  app.replaceChildren(
    el("section", { class: "card", id: "page-index", "data-testid": "page-index" },
      el("h1", { text: "Pages" }),
      el("p", { text: `There is no page called “${unknown}”. The pages are:` }),
      el("ul", { class: "page-list" },
        ...Object.entries(PAGES).map(([name, { title }]) =>
          el("li", {}, el("a", { href: `#${name}`, text: title })))),
    ),
  );
  return null;
}

window.addEventListener("hashchange", route);
route();
