// An RPC module that misbehaves on request, one function per misdeed: the
// host must end each attempt with its named code and keep serving others.
// (StarlingMonkey has no API for the environment or files, so the Python
// module is the one that tries those.)
import { rpcFunctions, WeftError } from '@weft/sdk/rpc';

export const handle = rpcFunctions({
  loop() {
    for (;;) {
      // burns the attempt's fuel
    }
  },

  alloc() {
    const hoard = [];
    for (;;) {
      hoard.push(new Uint8Array(16 << 20).fill(1));
    }
  },

  // Outbound HTTP: reaches only the hosts the module was deployed with.
  async get(call, { url }) {
    let response;
    try {
      response = await fetch(url);
    } catch (e) {
      throw new WeftError('http_failed', `GET ${url}: ${e.message ?? e}`).permanent();
    }
    return { status: response.status, body: await response.text() };
  },
});
