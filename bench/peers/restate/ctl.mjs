// Small control helper for the `run` script (no dependencies; Node >= 20).
//   node ctl.mjs freeports K            -> prints K distinct free loopback TCP ports
//   node ctl.mjs wait URL SECONDS       -> polls GET URL until HTTP 2xx
//   node ctl.mjs register ADMIN SDKURL  -> registers the SDK deployment via the admin API
//   node ctl.mjs ready INGRESS SECONDS  -> polls a 1-step call until the service is routable
import * as net from "node:net";

const [cmd, ...args] = process.argv.slice(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const die = (msg) => {
  process.stderr.write(`[ctl] ${msg}\n`);
  process.exit(1);
};

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function poll(fn, seconds, what) {
  const deadline = Date.now() + seconds * 1000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const r = await fn();
      if (r === true) return;
      last = String(r);
    } catch (e) {
      last = e?.cause?.code ?? e?.message ?? String(e);
    }
    await sleep(200);
  }
  die(`timed out waiting for ${what} (last: ${last})`);
}

switch (cmd) {
  case "freeports": {
    const k = Number(args[0] ?? 1);
    const ports = new Set();
    while (ports.size < k) ports.add(await freePort());
    console.log([...ports].join(" "));
    break;
  }
  case "wait": {
    const [url, secs] = args;
    await poll(async () => {
      const r = await fetch(url);
      await r.arrayBuffer();
      return r.ok || `HTTP ${r.status}`;
    }, Number(secs ?? 60), url);
    break;
  }
  case "register": {
    const [admin, uri] = args;
    const r = await fetch(`${admin}/deployments`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ uri, force: true }),
    });
    const text = await r.text();
    if (!r.ok) die(`deployment registration failed: HTTP ${r.status}: ${text}`);
    const j = JSON.parse(text);
    const svcs = (j.services ?? []).map((s) => `${s.name}(${(s.handlers ?? []).map((h) => h.name).join(",")})`);
    process.stderr.write(`[ctl] registered deployment ${j.id}: ${svcs.join(" ")}\n`);
    break;
  }
  case "ready": {
    const [ingress, secs] = args;
    await poll(async () => {
      const r = await fetch(`${ingress}/Chain/run`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ n: 1 }),
      });
      const t = await r.text();
      return (r.ok && t.trim() === "1") || `HTTP ${r.status} ${t.slice(0, 200)}`;
    }, Number(secs ?? 60), "service to become routable");
    break;
  }
  default:
    die(`unknown command ${cmd}`);
}
