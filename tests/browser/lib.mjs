// What the status page's browser tests share: Debian's Chromium, a bound on the whole run,
// screenshots in both colour schemes, and the check that no card shows a bare header.
import { chromium } from "playwright-core";

/** The longest a script may run: a hung page fails the test instead of stalling the suite. */
const SCRIPT_LIMIT_MS = 90000;
setTimeout(() => { console.error(`gave up after ${SCRIPT_LIMIT_MS} ms`); process.exit(2); }, SCRIPT_LIMIT_MS).unref();

export async function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** Calls the control API from outside the page, as robinctl would. */
export async function control(base, method, params) {
  const response = await fetch(base + "/api/1/control", {
    method: "POST",
    body: JSON.stringify({ method, params: params || {} }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`${method}: ${body.message}`);
  return body.result;
}

/** Full-page screenshots at 1280 and 360 px wide, light and dark, as DIR/NAME-WIDTH-SCHEME.png. */
export async function screenshots(page, dir, name) {
  for (const width of [1280, 360]) {
    for (const colorScheme of ["light", "dark"]) {
      await page.setViewportSize({ width, height: 900 });
      await page.emulateMedia({ colorScheme });
      await page.waitForTimeout(150);   // the chart redraws at the new width
      await page.screenshot({ path: `${dir}/${name}-${width}-${colorScheme}.png`, fullPage: true });
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
}

/**
 * Every card on screen says something beyond its headings, every table on screen has rows,
 * every sub-heading is followed by something visible, and nothing is wider than the window.
 * Returns the problems found, as sentences.
 */
export async function emptyHeaders(page) {
  return page.evaluate(() => {
    const shown = (node) => node.offsetParent !== null || node.getClientRects().length > 0;
    const problems = [];
    for (const card of document.querySelectorAll("main > section")) {
      if (!shown(card)) continue;
      const copy = card.cloneNode(true);
      copy.querySelectorAll("h2, h3, [hidden]").forEach((n) => n.remove());
      // innerText of a detached copy ignores CSS, so the hidden parts were removed above.
      if (copy.textContent.trim() === "") problems.push(`#${card.id} shows only its header`);
    }
    for (const table of document.querySelectorAll("main table")) {
      if (!shown(table) || table.closest(".sr-only")) continue;
      if (table.querySelectorAll("tbody tr").length === 0) problems.push(`a table in #${table.closest("section").id} has no rows`);
    }
    for (const h3 of document.querySelectorAll("main h3")) {
      if (!shown(h3)) continue;
      let next = h3.nextElementSibling;
      while (next && !shown(next)) next = next.nextElementSibling;
      if (!next || next.tagName === "H3" || next.textContent.trim() === "") problems.push(`"${h3.textContent}" heads nothing`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth) {
      problems.push(`the page is ${document.documentElement.scrollWidth} px wide in a ${window.innerWidth} px window`);
    }
    return problems;
  });
}
