// Load generator for the Restate peer benchmark. Works on Node >= 20.
// Calls the "Chain/run" handler through the Restate ingress (request/response: the HTTP
// response carries the handler's result), verifies the result == N, and prints one JSON
// line per N on stdout. Progress goes to stderr.
import * as http from "node:http";
import { performance } from "node:perf_hooks";

const env = process.env;
const INGRESS = new URL(env.INGRESS_URL ?? "http://127.0.0.1:8080");
const NS = (env.BENCH_NS ?? "1,10,100,1000").split(",").map((s) => s.trim()).filter(Boolean).map(Number);
const CONC = Number(env.BENCH_CONCURRENCY ?? 50);
const QUICK = env.BENCH_QUICK === "1";
const VERSION = env.RESTATE_VERSION ?? "unknown";
const DURABILITY = env.DURABILITY ?? "rocksdb-wal-fsync";
const SEQ_BUDGET_MS = QUICK ? 1000 : 6000; // target wall time for the sequential phase
const CONC_TARGET_S = QUICK ? 0 : 5; // target wall time for the throughput phase
const REQ_TIMEOUT_MS = 300_000;

for (const n of NS) {
  if (!Number.isInteger(n) || n < 0) fail(`bad BENCH_NS entry: ${n}`);
}
if (!Number.isInteger(CONC) || CONC < 1) fail(`bad BENCH_CONCURRENCY: ${env.BENCH_CONCURRENCY}`);

const agent = new http.Agent({ keepAlive: true, maxSockets: CONC + 4, maxFreeSockets: CONC + 4 });

function log(msg) {
  process.stderr.write(`[client] ${msg}\n`);
}
function fail(msg) {
  process.stderr.write(`[client] FATAL: ${msg}\n`);
  process.exit(1);
}

// One workflow run: POST /Chain/run {"n": n}; resolves with wall time in ms.
function runOnce(n) {
  const body = JSON.stringify({ n });
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      {
        host: INGRESS.hostname,
        port: INGRESS.port,
        path: "/Chain/run",
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const dt = performance.now() - t0;
          const text = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) {
            reject(new Error(`HTTP ${res.statusCode} for n=${n}: ${text.slice(0, 500)}`));
            return;
          }
          let v;
          try {
            v = JSON.parse(text);
          } catch {
            reject(new Error(`non-JSON response for n=${n}: ${text.slice(0, 200)}`));
            return;
          }
          if (v !== n) {
            reject(new Error(`wrong result for n=${n}: got ${text.slice(0, 200)}`));
            return;
          }
          resolve(dt);
        });
        res.on("error", reject);
      },
    );
    req.setTimeout(REQ_TIMEOUT_MS, () => req.destroy(new Error(`request timeout (n=${n})`)));
    req.on("error", reject);
    req.end(body);
  });
}

function quantile(sorted, q) {
  // linear interpolation between closest ranks
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
const r2 = (x) => Math.round(x * 100) / 100;

// Keep `conc` runs in flight until `shouldLaunch(launched, elapsedMs)` is false, then drain.
async function closedLoop(n, conc, shouldLaunch) {
  let launched = 0;
  let done = 0;
  const t0 = performance.now();
  let error = null;
  async function worker() {
    while (error === null && shouldLaunch(launched, performance.now() - t0)) {
      launched++;
      try {
        await runOnce(n);
        done++;
      } catch (e) {
        error = e;
      }
    }
  }
  await Promise.all(Array.from({ length: conc }, worker));
  if (error) throw error;
  return { done, elapsedMs: performance.now() - t0 };
}

async function benchN(n) {
  // Warm-up: at least 2 runs and ~1 s (0.3 s in quick mode).
  const warmMs = QUICK ? 300 : 1000;
  const tw = performance.now();
  let warmRuns = 0;
  while (warmRuns < 2 || (performance.now() - tw < warmMs && warmRuns < 1000)) {
    await runOnce(n);
    warmRuns++;
  }

  // Sequential latency: one run after another until the time budget is used up (R >= 10).
  const minR = QUICK ? 3 : 10;
  const lat = [];
  const ts = performance.now();
  while (lat.length < minR || (performance.now() - ts < SEQ_BUDGET_MS && lat.length < 5000)) {
    lat.push(await runOnce(n));
  }
  const R = lat.length;
  lat.sort((a, b) => a - b);
  const seqMedian = quantile(lat, 0.5);
  log(`n=${n}: ${warmRuns} warm-up runs; sequential R=${R} in ${(performance.now() - ts).toFixed(0)} ms, median ${seqMedian.toFixed(2)} ms`);

  // Throughput with CONC runs in flight.
  const minRuns = n <= 100 ? 100 : CONC;
  let M;
  if (QUICK) {
    M = CONC;
  } else if (CONC * seqMedian > 2000) {
    // A single wave of CONC runs already takes seconds: a pilot would cost too much time,
    // and the minimum batch (100 for N <= 100, one wave of CONC for larger N) is long enough.
    M = minRuns;
    log(`n=${n}: no pilot; measuring M=${M}`);
  } else {
    // short pilot (untimed) to size the measured batch to ~CONC_TARGET_S seconds
    const pilot = await closedLoop(n, CONC, (launched, el) => el < 1500 || launched < CONC);
    const rate = pilot.done / (pilot.elapsedMs / 1000);
    M = Math.max(minRuns, Math.round(rate * CONC_TARGET_S));
    log(`n=${n}: pilot ${pilot.done} runs in ${pilot.elapsedMs.toFixed(0)} ms (${rate.toFixed(1)} runs/s); measuring M=${M}`);
  }
  const conc = await closedLoop(n, CONC, (launched) => launched < M);
  const runsPerS = conc.done / (conc.elapsedMs / 1000);
  log(`n=${n}: ${conc.done} runs in ${conc.elapsedMs.toFixed(0)} ms with ${CONC} in flight`);

  return {
    engine: "restate",
    durability: DURABILITY,
    n,
    seq_runs: R,
    median_ms: r2(quantile(lat, 0.5)),
    p90_ms: r2(quantile(lat, 0.9)),
    concurrency: CONC,
    conc_runs: conc.done,
    runs_per_s: r2(runsPerS),
    steps_per_s: r2(runsPerS * n),
    version: VERSION,
  };
}

try {
  for (const n of NS) {
    const row = await benchN(n);
    process.stdout.write(JSON.stringify(row) + "\n");
  }
} catch (e) {
  fail(e?.stack ?? String(e));
}
agent.destroy();
