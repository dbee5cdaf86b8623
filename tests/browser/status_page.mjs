// Opens robind's status page in headless Chromium, starts a task through the control API and
// checks that the page shows it with its progress, then shows it gone when it is done.
// Usage: node status_page.mjs BASE_URL SCREENSHOT_PATH   (prints OK on success)
import { chromium } from "playwright-core";

const [base, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 10000 });
  // The page fills the database card from `status`: wait for what it says, not for the card.
  await page.waitForFunction(() => document.querySelector("#database").textContent.includes("robin.db (schema"),
    null, { timeout: 10000 });

  const response = await fetch(base + "/api/1/control", {
    method: "POST",
    body: JSON.stringify({ method: "tasks.run", params: { job: "query_balances" } }),
  });
  const id = (await response.json()).result.task_id;

  await page.waitForSelector(`#running tr[data-task-id="${id}"]`, { timeout: 10000 });
  const bar = await page.waitForSelector('#progress [data-subtype="balances_query_status"] progress', { timeout: 10000 });
  if (Number(await bar.getAttribute("max")) < 2) throw new Error("the bar has no total");
  // The bar moves as batches come in (each batch takes longer than the progress rate limit).
  await page.waitForFunction(() => {
    const moving = document.querySelector('#progress [data-subtype="balances_query_status"] progress');
    return moving && moving.value > 0 && moving.value < moving.max;
  }, null, { timeout: 10000 });
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.waitForSelector(`#running tr[data-task-id="${id}"]`, { state: "detached", timeout: 20000 });
  await page.waitForSelector(`#recent tr[data-task-id="${id}"]`, { timeout: 10000 });
  const outcome = await page.textContent(`#recent tr[data-task-id="${id}"]`);
  if (!outcome.includes("completed")) throw new Error(`unexpected outcome row: ${outcome}`);
  const messages = await page.textContent("#stream");
  if (!messages.includes("refresh_balances")) throw new Error("the live stream did not show refresh_balances");
  console.log("OK");
} finally {
  await browser.close();
}
