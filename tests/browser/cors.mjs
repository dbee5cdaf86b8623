// A page of another origin, allowed by a pattern, uses robind from a real browser: Chromium
// sends the CORS preflight for a JSON POST, reads the answers, and opens /ws. A page of an
// origin that is not allowed gets nothing. This is what rotki's desktop app does from
// app://localhost, which a test browser cannot load, so an http://localhost:* page stands in.
// Usage: node cors.mjs ROBIND_BASE_URL   (prints OK on success)
import http from "node:http";
import { chromium } from "playwright-core";

const [robind] = process.argv.slice(2);
const page_html = `<!doctype html><meta charset="utf-8"><title>app</title><script>
window.useRobind = async (base) => {
  const answer = await fetch(base + "/api/1/control", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ method: "tasks.run", params: { job: "db_backup" } }),
  });
  const started = await answer.json();
  const tasks = await (await fetch(base + "/api/1/tasks")).json();
  const message = await new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace("http", "ws") + "/ws");
    ws.onmessage = (event) => { resolve(event.data); ws.close(); };
    ws.onerror = () => reject(new Error("websocket refused"));
    ws.onopen = () => ws.send("hello");
  });
  return { status: answer.status, started, tasks, message };
};
</script>`;
const server = http.createServer((req, res) => {
  res.writeHead(200, { "Content-Type": "text/html" });
  res.end(page_html);
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const port = server.address().port;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const allowed = await browser.newPage();
  await allowed.goto(`http://localhost:${port}/`);
  const result = await allowed.evaluate((base) => window.useRobind(base), robind);
  if (result.status !== 200 || typeof result.started.result.task_id !== "number") {
    throw new Error("the control request failed: " + JSON.stringify(result));
  }
  if (!Array.isArray(result.tasks.result.pending)) throw new Error("no task list: " + JSON.stringify(result.tasks));
  if (result.message !== "hello") throw new Error("no echo on /ws: " + JSON.stringify(result.message));

  const refused = await browser.newPage();
  await refused.goto(`http://127.0.0.1:${port}/`);
  const outcome = await refused.evaluate(async (base) => {
    try { await window.useRobind(base); return "served"; } catch (e) { return "refused: " + e.message; }
  }, robind);
  if (!outcome.startsWith("refused")) throw new Error("a page of an origin that is not allowed was served");
  console.log("OK");
} finally {
  await browser.close();
  server.close();
}
