// The chat page's elements, and what they show in each state: the join form, the status
// and its Rejoin button, the token form, the message list, the composer, "Here now", and
// the error line. No connection here: chat.js decides; this module shows.

import { tokenForm } from "../../static/auth.js";
import { el } from "../../static/dom.js";

export const MAX_NAME = 32; // the server's limits (workshop_lib/chat/), checked here first
const MAX_TEXT = 500;
const ERROR_SHOWN_MS = 8_000;

/**
 * Fill `root` with the chat page.
 *
 * @param {HTMLElement} root - its old content is replaced
 * @param {() => void} onToken - a token was entered in the token form
 */
export function chatView(root, onToken) {
  const nameInput = el("input", {
    id: "chat-name", "data-testid": "chat-name", type: "text", maxLength: MAX_NAME,
    autocomplete: "nickname", placeholder: "Your name",
  });
  nameInput.spellcheck = false;
  const joinButton = el("button", {
    id: "chat-join", "data-testid": "chat-join", type: "submit", text: "Join",
  });
  const leaveButton = el("button", {
    id: "chat-leave", "data-testid": "chat-leave", type: "button", class: "secondary",
    text: "Leave", hidden: true,
  });
  const status = el("output", {
    id: "chat-status", "data-testid": "chat-status", class: "status", role: "status",
  });
  const rejoinButton = el("button", {
    id: "chat-rejoin", "data-testid": "chat-rejoin", type: "button", class: "secondary",
    text: "Rejoin", hidden: true,
  });
  const you = el("strong", { id: "chat-you", "data-testid": "chat-you" });
  const youLine = el("p", { class: "chat-you-line", hidden: true }, "You are ", you);
  const messages = el("ol", {
    id: "chat-messages", "data-testid": "chat-messages", class: "chat-messages", role: "log",
    "aria-label": "Messages",
  });
  const userCount = el("span", {
    id: "chat-user-count", "data-testid": "chat-user-count", class: "chat-count", text: "0",
  });
  const users = el("ul", {
    id: "chat-users", "data-testid": "chat-users", class: "chat-users",
    "aria-label": "People in the room",
  });
  const input = el("input", {
    id: "chat-input", "data-testid": "chat-input", type: "text", maxLength: MAX_TEXT,
    autocomplete: "off", placeholder: "Write a message and press Enter",
  });
  const sendButton = el("button", {
    id: "chat-send", "data-testid": "chat-send", type: "submit", text: "Send",
  });
  const auth = tokenForm(onToken);
  const errorLine = el("output", {
    id: "chat-error", "data-testid": "chat-error", class: "chat-error", "aria-live": "polite",
  });

  // Two forms, so that Enter in the name field joins and Enter in the message field sends.
  const joinForm = el("form", { class: "row", id: "chat-join-form" },
    el("label", { for: "chat-name", text: "Name" }), nameInput, joinButton, leaveButton);
  const sendForm = el("form", { class: "chat-send-form", id: "chat-send-form" },
    el("label", { for: "chat-input", class: "visually-hidden", text: "Message" }),
    input, sendButton);
  const here = `${location.origin}${location.pathname}`;

  root.replaceChildren(
    el("section", { class: "card", "aria-labelledby": "chat-title" },
      el("h1", { id: "chat-title", text: "Chat" }),
      el("p", { class: "lead", text:
        "Everyone connected to /chat is in one room, and every message reaches every " +
        "member in the same order. Pick a name and join; open a second window to see " +
        "both sides." }),
      joinForm,
      el("p", { class: "status-line action-status-line" }, "Status: ", status, rejoinButton),
      auth.element,
      el("p", { class: "chat-deep-link" },
        "Instructors: ",
        el("code", { id: "chat-deep-link", "data-testid": "chat-deep-link" },
          `${here}?name=`, el("var", { text: "NAME" }), "#chat"),
        " opens this page and joins as NAME at once (on a server with a token, add ",
        el("code", {}, "&token=", el("var", { text: "TOKEN" })),
        " after #chat: the part after # never reaches the server)."),
    ),
    el("div", { class: "chat-layout" },
      el("section", { class: "card chat-room", "aria-labelledby": "chat-messages-title" },
        el("div", { class: "log-header" },
          el("h2", { id: "chat-messages-title", text: "Messages" }), youLine),
        messages,
        sendForm,
        el("p", { class: "chat-error-line" }, errorLine),
      ),
      el("aside", { class: "card chat-people", "aria-labelledby": "chat-users-title" },
        el("h2", { id: "chat-users-title" }, "Here now ", userCount),
        users,
      ),
    ),
  );

  let errorTimer = 0;

  return {
    nameInput, rejoinButton, input, joinForm, sendForm, leaveButton, messages, users,
    userCount, auth,

    /**
     * Show the state, and enable exactly the controls that make sense in it. Returns
     * whether the page is in the room or on its way there.
     */
    setState(state, text, problem = false) {
      status.dataset.state = state;
      // The countdown calls this four times a second: rewrite the live region only when the
      // words change, so a screen reader does not announce the same line again and again.
      if (status.textContent !== text) status.textContent = text;
      status.toggleAttribute("data-problem", problem);
      const active = state === "connecting" || state === "joined" || state === "reconnecting";
      nameInput.disabled = active;
      joinButton.hidden = active;
      leaveButton.hidden = !active;
      input.disabled = state !== "joined";
      sendButton.disabled = state !== "joined";
      youLine.hidden = !(state === "joined" || state === "reconnecting");
      return active;
    },

    /** The Rejoin button, with a label for the situation, or hidden (`null`). */
    offerRejoin(label) {
      rejoinButton.hidden = label === null;
      if (label !== null) rejoinButton.textContent = label;
    },

    /** The name the server gave this page. */
    showYou(name) {
      you.textContent = name;
      you.title = name;
    },

    /** Show an error in the small line under the input, for a few seconds. */
    showError(code, message) {
      errorLine.dataset.code = code;
      errorLine.replaceChildren(el("code", { text: code }), " ", message);
      clearTimeout(errorTimer);
      errorTimer = setTimeout(() => {
        errorLine.replaceChildren();
        delete errorLine.dataset.code;
      }, ERROR_SHOWN_MS);
    },

    /** Stop the error line's timer: the page is going away. */
    dispose() {
      clearTimeout(errorTimer);
    },
  };
}
