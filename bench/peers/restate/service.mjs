// Restate SDK endpoint for the Weft peer benchmark.
// Run with Node 22 (node_modules/node22/bin/node). Listens on 127.0.0.1:$SDK_PORT (HTTP/2 cleartext).
//
// Service "Chain", handler "run": input {"n": N}; performs N sequential ctx.run steps,
// each returning x+1 from the previous x (starting at 0), and returns the final x (== N).
// Every ctx.run result is journaled by the server before the handler continues, so a replay
// would read the recorded value instead of recomputing the step.
import * as http2 from "node:http2";
import * as restate from "@restatedev/restate-sdk";

const chain = restate.service({
  name: "Chain",
  handlers: {
    run: async (ctx, input) => {
      const n = Number(input?.n);
      if (!Number.isInteger(n) || n < 0) {
        throw new restate.TerminalError(`bad n: ${JSON.stringify(input)}`);
      }
      let x = 0;
      for (let i = 0; i < n; i++) {
        const prev = x;
        x = await ctx.run("step", () => prev + 1);
      }
      return x;
    },
  },
});

const port = Number(process.env.SDK_PORT);
if (!port) {
  console.error("SDK_PORT not set");
  process.exit(2);
}
const server = http2.createServer(restate.createEndpointHandler({ services: [chain] }));
server.listen(port, "127.0.0.1", () => {
  console.error(`[service] Restate SDK endpoint listening on 127.0.0.1:${port} (node ${process.version})`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
