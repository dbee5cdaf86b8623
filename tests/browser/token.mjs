// With an API token configured, the page works when its URL carries the token (/?token=...)
// and says what is missing when it does not.
// Usage: node token.mjs BASE_URL TOKEN   (prints OK on success)
import { launch } from "./lib.mjs";

const [base, token] = process.argv.slice(2);
const browser = await launch();
try {
  const page = await browser.newPage();
  await page.goto(base + "/");
  await page.waitForSelector("#auth:not([hidden])", { timeout: 10000 });
  const said = await page.innerText("#auth");
  if (!said.includes("?token=")) throw new Error(`the banner: ${said}`);

  await page.goto(base + "/?token=" + encodeURIComponent(token));
  await page.waitForSelector('#connection[data-state="live"]', { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector("#database").textContent.includes("robin.db (schema"),
    null, { timeout: 10000 });
  await page.waitForSelector("#setup:not([hidden])", { timeout: 10000 });
  if (await page.isVisible("#auth")) throw new Error("the token banner stays with the token given");
  console.log("OK");
} finally {
  await browser.close();
}
