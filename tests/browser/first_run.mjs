// An empty database (no account, no rpc_url): the status page says what to do instead of
// showing empty cards, and the guidance goes once an account and a node are set.
// Usage: node first_run.mjs BASE_URL RPC_URL SCREENSHOT_DIR   (prints OK on success)
import { launch, control, screenshots, emptyHeaders } from "./lib.mjs";

const [base, rpc, shots] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(base + "/");
  await page.waitForSelector("#setup:not([hidden])", { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector("#database").textContent.includes("robin.db (schema"),
    null, { timeout: 10000 });
  const setup = await page.innerText("#setup");
  for (const needed of ["robinctl accounts add ADDRESS", "robinctl settings rpc_url URL", "price_api_url",
                        "https://api.coingecko.com/api/v3"]) {
    if (!setup.includes(needed)) throw new Error(`the setup card does not say "${needed}": ${setup}`);
  }
  for (const empty of ["#overview", "#history", "#holdings-card", "#accounts-card"]) {
    if (await page.isVisible(empty)) throw new Error(`${empty} is shown on an empty database`);
  }
  for (const width of [1280, 360]) {
    await page.setViewportSize({ width, height: 900 });
    const problems = await emptyHeaders(page);
    if (problems.length) throw new Error(`at ${width} px: ${problems.join("; ")}`);
  }
  await screenshots(page, shots, "first-run");

  // Half done: the account step is ticked off, the node step is not.
  await control(base, "accounts.add", { address: "0x" + "1".padStart(40, "0"), label: "Savings" });
  await page.waitForSelector("#step-account.done", { timeout: 10000 });
  if (await page.isVisible("#step-rpc.done")) throw new Error("the rpc_url step is done without an rpc_url");
  await control(base, "settings.set", { name: "rpc_url", value: rpc });
  await page.waitForSelector("#setup", { state: "hidden", timeout: 10000 });
  // With nothing queried yet, the cards say so in words.
  await page.waitForSelector("#overview:not([hidden])", { timeout: 10000 });
  const net = await page.innerText("#overview");
  if (!net.includes("No snapshot yet")) throw new Error(`the net value card: ${net}`);
  const problems = await emptyHeaders(page);
  if (problems.length) throw new Error(`after setup: ${problems.join("; ")}`);
  console.log("OK");
} finally {
  await browser.close();
}
