// The browser client's entry point: a tiny hash router over the server's pages.
//
// Each lesson is one page, chosen by the URL fragment (#echo, #ball, #chat), so the
// server serves a single index.html and a notebook can link straight to a lesson. The
// server says which lessons it runs: `api/pages` lists each page's name, title and the url
// of its module, a file of the lesson's own package served at `lessons/<lesson>/<file>`,
// whose default export is `mount(root) -> unmount`. So a new lesson, the course's or one
// installed from outside, needs no change here (docs/architecture.md, "Lessons as plug-ins").
//
// The fragment may also carry a token after the page's name, "#chat&token=T" (auth.js): it
// is moved into this tab's storage and out of the address bar before any page looks at it.

import { startAnnouncements } from "./announce.js";
import { parseFragment, takeTokenFromUrl } from "./auth.js";
import { el } from "./dom.js";
import { mountRoomPage } from "./room.js";

// Not a lesson but the instructor's overview of the room: part of every server.
const ROOM_PAGE = { name: "room", title: "Room", mount: mountRoomPage };

const app = document.getElementById("app");
const nav = document.querySelector(".site-nav");
let pages = {}; // name -> { name, title, module, url, mount? }
let unmount = null;
let routing = 0; // bumped by each route(): a slow module load must not mount a stale page

/** Ask the server for its pages (relative URL: works under a proxy's prefix). */
async function loadPages() {
  const response = await fetch("api/pages", { cache: "no-store" });
  if (!response.ok) throw new Error(`api/pages answered ${response.status}`);
  const list = [...(await response.json()), ROOM_PAGE];
  pages = Object.fromEntries(list.map((page) => [page.name, page]));
  // Every page's module now, while the server answers: a page chosen later (say, while the
  // server restarts) must still open, and show that it is reconnecting.
  await Promise.all(list.map(mountFunction));
  nav.replaceChildren(
    ...list.map(({ name, title }) => el("a", { href: `#${name}`, "data-page": name, text: title })),
  );
}

/** The page's mount function, importing its module the first time. */
async function mountFunction(page) {
  // The url is relative to the site's root (this file is static/main.js): under a proxy's
  // prefix the module is found below the same prefix.
  if (!page.mount) page.mount = (await import(`../${page.url}`)).default;
  return page.mount;
}

/** Show the page named by the current fragment, after unmounting the previous one. */
async function route() {
  const current = ++routing;
  takeTokenFromUrl();
  // The first page the server lists is the default, so "/" is immediately useful.
  const name = parseFragment(location.hash).page || Object.keys(pages)[0];
  // Own properties only: "#toString" must not find Object.prototype.toString.
  const page = Object.hasOwn(pages, name) ? pages[name] : null;
  const mount = page ? await mountFunction(page) : null; // loaded already by loadPages()
  if (current !== routing) return; // another fragment was chosen meanwhile

  unmount?.(); // close the old page's connections before the new page opens its own
  unmount = mount ? mount(app) : showIndex(name);

  document.title = `${page ? page.title : "Pages"} · WebSocket Basics Workshop`;
  for (const link of nav.querySelectorAll("a")) {
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
        ...Object.values(pages).map(({ name, title }) =>
          el("li", {}, el("a", { href: `#${name}`, text: title })))),
    ),
  );
  return null;
}

/** A card that says what went wrong and what to do. */
function showProblem(text) {
  unmount?.();
  unmount = null;
  app.replaceChildren(
    el("section", { class: "card", "data-testid": "page-problem" },
      el("h1", { text: "This page could not start" }),
      el("p", { text }),
      el("p", { text: "Check that the workshop server is running, then reload this page." }),
    ),
  );
}

// First of all, before any request: the token leaves the address bar at once.
takeTokenFromUrl();
try {
  await loadPages();
  window.addEventListener("hashchange", route);
  await route();
  startAnnouncements(document.querySelector(".site-header")); // the instructor's, if any
} catch (error) {
  showProblem(`The server did not list its pages (${error.message}).`);
}
