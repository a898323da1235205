// Runs the Isthmus dev runtime with chopsticks, offline, on a free local port.
//
//   node substrate-chain.mjs <runtime.wasm> [port]
//
// The raw genesis is produced from the runtime itself: its GenesisBuilder API builds
// the `development` preset's storage inside chopsticks' wasm executor (no node binary
// exists for this runtime). The spec is cached next to the wasm blob. Blocks are built
// as soon as a transaction arrives (instant mode) and every block is final.
//
// Listens on 127.0.0.1:<port> (default 0: a free port). Prints
// `DEVNET_SUBSTRATE_PORT=<port>` on stdout once the RPC server listens, then
// runs until SIGTERM or SIGINT. Run it in its own process group and kill the group.
import { readFileSync, writeFileSync, existsSync, renameSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const core = require('@acala-network/chopsticks-core');
const { setupWithServer } = require('@acala-network/chopsticks');
const { compactToU8a, u8aConcat, u8aToHex, hexToU8a, stringToU8a, compactFromU8a, u8aToString } =
  require('@polkadot/util');

const PRESET = 'development';
const CODE_KEY = '0x3a636f6465'; // `:code`

function scaleBytes(bytes) {
  return u8aConcat(compactToU8a(bytes.length), bytes);
}

function decodeScaleBytes(bytes) {
  const [offset, length] = compactFromU8a(bytes);
  return bytes.subarray(offset, offset + length.toNumber());
}

const noStorage = {
  ...core.emptyTaskHandler,
  getStorage: async () => undefined,
  getNextKey: async () => undefined,
};

async function call(wasm, method, args) {
  const response = await core.runTask(
    { wasm, calls: [[method, args]], mockSignatureHost: false, allowUnresolvedImports: false, runtimeLogLevel: 0 },
    noStorage,
  );
  if ('Error' in response) throw new Error(`${method}: ${response.Error}`);
  return response.Call;
}

async function buildSpec(wasm) {
  // GenesisBuilder_get_preset(Some(PRESET)) -> Option<Vec<u8>> (JSON).
  const presetId = u8aConcat(new Uint8Array([1]), scaleBytes(stringToU8a(PRESET)));
  const preset = await call(wasm, 'GenesisBuilder_get_preset', [u8aToHex(presetId)]);
  const out = hexToU8a(preset.result);
  if (out[0] !== 1) throw new Error(`the runtime has no "${PRESET}" preset`);
  const json = decodeScaleBytes(out.subarray(1));
  // GenesisBuilder_build_state(json) -> Result<(), String>; the storage is its diff.
  const built = await call(wasm, 'GenesisBuilder_build_state', [u8aToHex(scaleBytes(json))]);
  const result = hexToU8a(built.result);
  if (result[0] !== 0) {
    throw new Error(`build_state failed: ${u8aToString(decodeScaleBytes(result.subarray(1)))}`);
  }
  const top = {};
  for (const [key, value] of built.storageDiff) {
    if (value !== null) top[key] = value;
  }
  top[CODE_KEY] = wasm;
  return {
    name: 'Isthmus dev',
    id: 'isthmus_dev',
    properties: { ss58Format: 42, tokenDecimals: 12, tokenSymbol: 'UNIT' },
    genesis: { raw: { top, childrenDefault: {} } },
  };
}

async function main() {
  if (!process.argv[2]) throw new Error('usage: node substrate-chain.mjs <runtime.wasm> [port]');
  if (process.argv[3] !== undefined && !/^[0-9]+$/.test(process.argv[3])) {
    throw new Error(`port ${process.argv[3]}: a number expected`);
  }
  // Resolve links (`latest.wasm`) so the cached spec belongs to this very blob.
  const wasmPath = realpathSync(process.argv[2]);
  const wasm = u8aToHex(readFileSync(wasmPath));
  const specPath = `${wasmPath}.spec.json`;
  let spec;
  if (existsSync(specPath)) {
    spec = JSON.parse(readFileSync(specPath, 'utf8'));
  } else {
    spec = await buildSpec(wasm);
    const tmp = `${specPath}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(spec));
    renameSync(tmp, specPath);
  }
  const chain = await setupWithServer({
    genesis: spec,
    port: Number(process.argv[3] ?? 0),
    host: '127.0.0.1',
    'build-block-mode': core.BuildBlockMode.Instant,
    'mock-signature-host': false,
    'runtime-log-level': 0,
  });
  const port = Number(chain.addr.split(':').pop());
  process.stdout.write(`DEVNET_SUBSTRATE_PORT=${port}\n`);
  const stop = async () => {
    try {
      await chain.close();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => {
  process.stderr.write(`substrate-chain: ${err.stack ?? err}\n`);
  process.exit(1);
});
