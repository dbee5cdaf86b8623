// The dashboard over real data: after two snapshots the chart has two points and the holdings
// and accounts tables the fake API's exact figures; "Refresh balances" starts a task that shows
// up and completes, and the chart and tables follow.
// Usage: node dashboard.mjs BASE_URL SCREENSHOT_DIR   (prints OK on success)
import { launch, control, screenshots, emptyHeaders } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
const expect = (what, actual, wanted) => {
  if (JSON.stringify(actual) !== JSON.stringify(wanted)) {
    throw new Error(`${what}: got ${JSON.stringify(actual)}, wanted ${JSON.stringify(wanted)}`);
  }
};
const cells = (page, selector) => page.$$eval(selector, (rows) => rows.map((tr) =>
  [...tr.cells].map((td) => td.innerText.split("\n")[0].trim())));

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(base + "/");
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 10000 });
  await page.waitForSelector('#chart[data-points="2"]', { timeout: 10000 });
  expect("points on the chart", await page.locator("#chart circle.point").count(), 2);
  expect("rows behind the chart", await page.locator("#chart-data tbody tr").count(), 2);
  const label = await page.getAttribute("#chart svg", "aria-label");
  if (!label.includes("2 snapshots") || !label.includes("latest 3012.3775 EUR")) throw new Error(`chart label: ${label}`);

  // 1.5 ETH x 2000.5, 10.25 DAI x 0.91, 2.5 USDC x 0.92, and 7 of a token with no price.
  expect("holdings", await cells(page, "#holdings tbody tr"), [
    ["ETH", "1.5", "2000.5", "3000.75", "99.6%"],
    ["DAI", "10.25", "0.91", "9.3275", "0.3%"],
    ["USDC", "2.5", "0.92", "2.3", "<0.1%"],
    ["0x11111111…", "7", "no price", "not counted", "-"],
  ]);
  expect("unpriced rows", await page.locator("#holdings tr.unpriced").count(), 1);
  expect("total", await page.innerText("#holdings-total"), "3012.3775 EUR");
  if (!(await page.innerText("#holdings-note")).includes("1 asset has no price")) throw new Error("no unpriced note");
  expect("net value", (await page.innerText("#net-value")).replace(/\s+/g, " "), "3,012.38 EUR");
  expect("changes", [await page.innerText("#change-previous"), await page.innerText("#change-day"),
    await page.innerText("#change-week")], ["0.00 EUR (0.00%)", "n/a", "n/a"]);
  expect("accounts", await cells(page, "#accounts tbody tr"), [["Savings", "1.5 ETH", "3000.75 EUR"]]);
  const schedule = await page.innerText("#schedule");
  if (!/Prices: (due now|next in)/.test(schedule) || !/Balances: (due now|next in)/.test(schedule)) {
    throw new Error(`the scheduler's next runs: ${schedule}`);
  }
  if (await page.isVisible("#setup")) throw new Error("setup steps shown for a set-up daemon");

  // Hovering the chart reads a point.
  const last = await page.locator("#chart circle.point").last().boundingBox();
  await page.mouse.move(last.x + last.width / 2, last.y + last.height / 2);
  await page.waitForSelector("#tooltip:not([hidden])", { timeout: 5000 });
  if (!(await page.innerText("#tooltip")).includes("3,012.38 EUR")) throw new Error(await page.innerText("#tooltip"));
  await page.locator("#history").screenshot({ path: `${shots}/dashboard-hover-1280-light.png` });
  await page.hover("#holdings-title");
  await page.waitForSelector("#tooltip", { state: "hidden", timeout: 5000 });

  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: 900 });
    const problems = await emptyHeaders(page);
    if (problems.length) throw new Error(`at ${width} px: ${problems.join("; ")}`);
  }
  await screenshots(page, shots, "dashboard");

  // A second account, then the button: the new snapshot holds twice the ether.
  await control(base, "accounts.add", { address: "0x" + "2".padStart(40, "0") });
  await page.getByRole("button", { name: "Refresh balances" }).click();
  await page.waitForFunction(() => /task #\d+/.test(document.querySelector("#action-status").textContent),
    null, { timeout: 10000 });
  const id = (await page.innerText("#action-status")).match(/task #(\d+)/)[1];
  await page.waitForSelector(`#running tr[data-task-id="${id}"], #recent tr[data-task-id="${id}"]`, { timeout: 10000 });
  await page.waitForSelector(`#recent tr[data-task-id="${id}"]`, { timeout: 20000 });
  const outcome = await page.innerText(`#recent tr[data-task-id="${id}"]`);
  if (!outcome.includes("query_balances") || !outcome.includes("completed")) throw new Error(`outcome: ${outcome}`);
  await page.waitForSelector('#chart[data-points="3"]', { timeout: 10000 });
  expect("points after the refresh", await page.locator("#chart circle.point").count(), 3);
  expect("ether after the refresh", (await cells(page, "#holdings tbody tr"))[0], ["ETH", "3", "2000.5", "6001.5", "99.6%"]);
  expect("total after the refresh", await page.innerText("#holdings-total"), "6024.755 EUR");
  expect("accounts after the refresh", await cells(page, "#accounts tbody tr"),
    [["Savings", "1.5 ETH", "3000.75 EUR"], ["0x0000…0002", "1.5 ETH", "3000.75 EUR"]]);
  expect("change since the previous snapshot", await page.innerText("#change-previous"), "+3,012.38 EUR (+100.00%)");
  if (!(await page.innerText("#stream")).includes("refresh_balances")) throw new Error("no refresh_balances message");

  await page.getByRole("button", { name: "Refresh prices" }).click();
  await page.waitForFunction(() => /Prices query started \(task #\d+\)/.test(document.querySelector("#action-status").textContent),
    null, { timeout: 10000 });
  const prices = (await page.innerText("#action-status")).match(/task #(\d+)/)[1];
  await page.waitForSelector(`#recent tr[data-task-id="${prices}"]`, { timeout: 20000 });
  const priced = await page.innerText(`#recent tr[data-task-id="${prices}"]`);
  if (!priced.includes("query_prices") || !priced.includes("completed")) throw new Error(`outcome: ${priced}`);
  await page.screenshot({ path: `${shots}/dashboard-after-refresh-1280-light.png`, fullPage: true });
  console.log("OK");
} finally {
  await browser.close();
}
