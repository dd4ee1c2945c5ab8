// One tiny DOM builder shared by the lesson pages.
//
// Every string becomes a text node, never markup: text typed by a learner or sent by
// the server can then never run as HTML (no innerHTML anywhere in this client).

/**
 * Create an element with attributes and children.
 *
 * Usage: `el("li", { dataset: { direction: "sent" } }, el("time", {}, "12:00:00.000"), "hi")`
 *
 * @param {string} tag - element name
 * @param {object} [props] - `class`, `dataset`, `text`, properties such as `type` or
 *   `disabled`, and anything else as an attribute (`id`, `for`, `aria-*`, `data-testid`)
 * @param {...(Node | string | null | undefined)} children - strings become text nodes;
 *   null and undefined are skipped, which keeps optional parts readable at the call site
 * @returns {HTMLElement}
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = value;
    else if (key in node && !key.includes("-")) node[key] = value; // type, value, disabled...
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null) node.append(child); // append() makes text nodes
  }
  return node;
}
