// Pikku workflow-engine peer benchmark (inline mode).
//
// Workload: one workflow of N sequential steps; step i takes x and returns x+1,
// each step is a recorded Pikku workflow step (`workflow.do(name, fn)`), start
// x = 0, expected result N.
//
// stdout: one JSON object per (durability, N). Everything else goes to stderr.

import { readFileSync } from 'node:fs'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

import { pikkuState, setSingletonServices } from '@pikku/core/ecosystem'
import { addFunction } from '@pikku/core/function'
import { addWorkflow } from '@pikku/core/workflow'
import { rpcService } from '@pikku/core/rpc'
import { InMemoryWorkflowService } from '@pikku/core/services'

const pkgVersion = (name) =>
  JSON.parse(
    readFileSync(
      fileURLToPath(
        new URL(`./node_modules/${name}/package.json`, import.meta.url)
      ),
      'utf8'
    )
  ).version
const PIKKU_VERSION = pkgVersion('@pikku/core')

// ---------------------------------------------------------------- settings
const envInt = (name, dflt) => {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return dflt
  const v = Number(raw)
  if (!Number.isInteger(v) || v <= 0) throw new Error(`bad ${name}=${raw}`)
  return v
}
const NS = (process.env.BENCH_NS || '1,10,100,1000')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map((s) => {
    const n = Number(s)
    if (!Number.isInteger(n) || n <= 0) throw new Error(`bad N in BENCH_NS: ${s}`)
    return n
  })
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 50)
const QUICK = process.env.BENCH_QUICK === '1'
const REDIS_URL = process.env.BENCH_REDIS_URL
const DURABILITIES = (process.env.BENCH_DURABILITY || 'in-memory,redis-fsync')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
// 'inline' (default): each step is `workflow.do(name, async () => x + 1)`.
// 'rpc': each step is `workflow.do(name, 'benchAddOne', { x })`, i.e. a step
// that invokes a registered Pikku function. Not part of the contract output
// unless explicitly selected.
const STEP_KIND = process.env.PIKKU_STEP_KIND || 'inline'

const SEQ_TARGET_S = QUICK ? 0.3 : 4 // measured sequential time (cap ~8 s)
const SEQ_MIN_RUNS = QUICK ? 3 : 10
const SEQ_MAX_RUNS = QUICK ? 50 : 20000
const CONC_TARGET_S = QUICK ? 0.5 : 5 // measured throughput time (3-8 s)
const WARMUP_S = QUICK ? 0.05 : 0.5

const log = (...args) => console.error('[pikku-bench]', ...args)

// ---------------------------------------------------------------- pikku wiring
// What Pikku's generated bootstrap does at start-up: singleton services,
// function meta + registration, workflow runtime meta + registration.
const quiet = {
  info() {},
  debug() {},
  trace() {},
  warn: (...a) => {
    // Emitted by every RedisWorkflowService construction (it wires queue
    // workers by default); irrelevant when no queue service exists (inline).
    if (/no per-workflow orchestrator queues/.test(String(a[0]))) return
    console.error('[pikku warn]', ...a)
  },
  error: (...a) => console.error('[pikku error]', ...a),
  setLevel() {},
}
const singletonServices = { logger: quiet, config: {} }
setSingletonServices(singletonServices)

const WORKFLOW = 'benchChain'

const functionMeta = pikkuState(null, 'function', 'meta')
functionMeta[WORKFLOW] = {
  pikkuFuncId: WORKFLOW,
  name: WORKFLOW,
  sessionless: true,
}
functionMeta.benchAddOne = {
  pikkuFuncId: 'benchAddOne',
  name: 'benchAddOne',
  sessionless: true,
}
// Counts executions of step bodies, so the self-check can prove that a
// replay serves recorded results instead of re-running steps.
let stepExecutions = 0

addFunction('benchAddOne', {
  func: async (_services, data) => {
    stepExecutions++
    return data.x + 1
  },
})

pikkuState(null, 'workflows', 'meta')[WORKFLOW] = {
  name: WORKFLOW,
  pikkuFuncId: WORKFLOW,
  // A loop of closure steps is what Pikku calls a "complex" workflow
  // (pikkuWorkflowComplexFunc); the hash identifies the definition version.
  source: 'complex',
  graphHash: `bench-chain-${STEP_KIND}-v1`,
}

addWorkflow(WORKFLOW, {
  func: async (_services, input, { workflow }) => {
    let x = input.x
    for (let i = 0; i < input.n; i++) {
      if (STEP_KIND === 'rpc') {
        x = await workflow.do(`add-${i}`, 'benchAddOne', { x })
      } else {
        const cur = x
        x = await workflow.do(`add-${i}`, async () => {
          stepExecutions++
          return cur + 1
        })
      }
    }
    return x
  },
})

const rpc = rpcService.getContextRPCService(singletonServices, {})

// ---------------------------------------------------------------- engines
async function makeService(durability) {
  if (durability === 'in-memory') {
    const ws = new InMemoryWorkflowService()
    return { ws, retain: false, reader: async () => ws }
  }
  if (durability === 'redis-fsync') {
    if (!REDIS_URL) throw new Error('BENCH_REDIS_URL not set')
    const { RedisWorkflowService } = await import('@pikku/redis')
    const { Redis } = await import('ioredis')
    const prefix = `bench:${process.pid}:${Date.now()}`
    // One ioredis connection, owned by us and handed to the service (the
    // documented usage). Each (durability, N) phase starts from an empty
    // database (untimed), so phases do not inherit each other's data and
    // AOF-rewrite cost.
    const conn = new Redis(REDIS_URL)
    await conn.flushall('SYNC')
    const ws = new RedisWorkflowService(conn, prefix)
    await ws.init()
    const origClose = ws.close.bind(ws)
    ws.close = async () => {
      await origClose()
      await conn.quit()
    }
    // For the self-check: a second service on its own connection, so step
    // records are read back from Redis rather than from process memory.
    const reader = async () => {
      const r = new RedisWorkflowService(REDIS_URL, prefix)
      await r.init()
      return r
    }
    return { ws, retain: true, reader }
  }
  throw new Error(`unknown durability ${durability}`)
}

// One workflow run, start to available result. Same sequence as Pikku's own
// `runToCompletion` (inline startWorkflow, then read the run record), but we
// keep the run id so the in-memory store can drop finished runs.
async function runOnce(svc, n) {
  const { runId } = await svc.ws.startWorkflow(
    WORKFLOW,
    { n, x: 0 },
    { type: 'bench' },
    rpc,
    { inline: true }
  )
  const run = await svc.ws.getRun(runId)
  if (!run || run.status !== 'completed') {
    throw new Error(
      `run ${runId} ended with status ${run?.status}: ${run?.error?.message}`
    )
  }
  if (run.output !== n) {
    throw new Error(`wrong result for n=${n}: got ${run.output}, want ${n}`)
  }
  return runId
}

// InMemoryWorkflowService locates a step by a linear scan over every step it
// has ever stored, so an ever-growing store makes each step slower. Finished
// runs are therefore deleted (outside the timed span for sequential runs) so
// the store only holds in-flight runs. The Redis store keeps everything.
async function release(svc, runId) {
  if (!svc.retain) await svc.ws.deleteRun(runId)
}

// Not timed. Runs one small workflow and checks that (a) every step left a
// succeeded record holding its result in the store, (b) re-running the
// workflow body for that run (Pikku's replay path, runWorkflowJob) returns
// recorded results without executing any step body again.
async function selfCheck(svc, durability) {
  const n = 3
  const before = stepExecutions
  const { runId } = await svc.ws.startWorkflow(
    WORKFLOW, { n, x: 0 }, { type: 'bench-check' }, rpc, { inline: true }
  )
  const run = await svc.ws.getRun(runId)
  if (run?.status !== 'completed' || run.output !== n) {
    throw new Error(`self-check: run ${runId} ${run?.status} output ${run?.output}`)
  }
  if (stepExecutions - before !== n) {
    throw new Error(`self-check: ${stepExecutions - before} step executions, want ${n}`)
  }
  const reader = await svc.reader()
  try {
    for (let i = 0; i < n; i++) {
      const st = await reader.getStepState(runId, `add-${i}`)
      if (st.status !== 'succeeded' || st.result !== i + 1) {
        throw new Error(`self-check: step add-${i} is ${st.status} / ${st.result}`)
      }
    }
  } finally {
    if (reader !== svc.ws) await reader.close()
  }
  const mid = stepExecutions
  await svc.ws.runWorkflowJob(runId, rpc)
  const again = await svc.ws.getRun(runId)
  if (stepExecutions !== mid || again?.output !== n) {
    throw new Error(`self-check: replay re-executed ${stepExecutions - mid} steps`)
  }
  await release(svc, runId)
  log(`${durability}: self-check ok (steps recorded in store, replay re-executed 0 steps)`)
}

const quantile = (sorted, q) => {
  // nearest-rank
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[idx]
}
const r3 = (v) => Math.round(v * 1000) / 1000

async function measureSequential(svc, n) {
  // warm-up: >= 1 run; 3 runs unless that takes > 2 s; more while < WARMUP_S
  const t0 = performance.now()
  let warm = 0
  for (;;) {
    const el = performance.now() - t0
    if (warm >= 1 && !(warm < 3 && el < 2000) && !(el < WARMUP_S * 1000 && warm < 200)) break
    const id = await runOnce(svc, n)
    await release(svc, id)
    warm++
  }
  const perRunMs = (performance.now() - t0) / warm
  const runs = Math.min(
    SEQ_MAX_RUNS,
    Math.max(SEQ_MIN_RUNS, Math.floor((SEQ_TARGET_S * 1000) / perRunMs))
  )
  const samples = new Array(runs)
  for (let i = 0; i < runs; i++) {
    const s = performance.now()
    const id = await runOnce(svc, n)
    samples[i] = performance.now() - s
    await release(svc, id)
  }
  samples.sort((a, b) => a - b)
  return {
    runs,
    median: quantile(samples, 0.5),
    p90: quantile(samples, 0.9),
    perRunMs,
  }
}

async function runWithConcurrency(svc, n, total, conc) {
  let next = 0
  const worker = async () => {
    while (next < total) {
      next++
      const id = await runOnce(svc, n)
      await release(svc, id)
    }
  }
  const s = performance.now()
  await Promise.all(Array.from({ length: Math.min(conc, total) }, worker))
  return (performance.now() - s) / 1000
}

async function measureThroughput(svc, n) {
  // Start with the minimum total; if a pass finishes in under half the target
  // time, resize from its rate and run again (earlier passes double as
  // warm-up). Only the final pass is reported.
  const minTotal = QUICK
    ? CONCURRENCY
    : n <= 100
      ? Math.max(100, CONCURRENCY)
      : CONCURRENCY
  let total = minTotal
  for (let pass = 1; ; pass++) {
    const secs = await runWithConcurrency(svc, n, total, CONCURRENCY)
    if (secs >= CONC_TARGET_S * 0.5 || pass >= 4) {
      return { total, runsPerS: total / secs, secs }
    }
    total = Math.max(minTotal, Math.round((total / secs) * CONC_TARGET_S))
  }
}

// ---------------------------------------------------------------- main
async function main() {
  log(
    `@pikku/core ${PIKKU_VERSION}, node ${process.version}, NS=${NS.join(',')}, ` +
      `concurrency=${CONCURRENCY}, quick=${QUICK}, step kind=${STEP_KIND}`
  )
  for (const durability of DURABILITIES) {
    for (const n of NS) {
      const svc = await makeService(durability)
      try {
        await selfCheck(svc, durability)
        const seq = await measureSequential(svc, n)
        log(
          `${durability} n=${n}: seq ${seq.runs} runs, median ${seq.median.toFixed(3)} ms, p90 ${seq.p90.toFixed(3)} ms`
        )
        const thr = await measureThroughput(svc, n)
        log(
          `${durability} n=${n}: ${thr.total} runs @${CONCURRENCY} in ${thr.secs.toFixed(2)} s = ${thr.runsPerS.toFixed(1)} runs/s`
        )
        const line = {
          engine: 'pikku',
          durability,
          n,
          seq_runs: seq.runs,
          median_ms: r3(seq.median),
          p90_ms: r3(seq.p90),
          concurrency: CONCURRENCY,
          conc_runs: thr.total,
          runs_per_s: Math.round(thr.runsPerS * 10) / 10,
          steps_per_s: Math.round(thr.runsPerS * n * 10) / 10,
          version: PIKKU_VERSION,
        }
        if (STEP_KIND !== 'inline') line.step_kind = STEP_KIND
        process.stdout.write(JSON.stringify(line) + '\n')
      } finally {
        await svc.ws.close()
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error('[pikku-bench] FAILED:', err?.stack || err)
    process.exit(1)
  }
)
