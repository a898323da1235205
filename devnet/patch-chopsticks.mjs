// Makes chopsticks keep the runtime's header digest, so a dev-chain header carries what
// the runtime deposited in it (pallet-isthmus's outbox commitment, `ISTH`).
//
//   node patch-chopsticks.mjs            (run by `make devnet-tools` after `npm ci`)
//
// chopsticks 1.5.1 builds every header itself: it passes the parent's digest logs to
// `Core_initialize_block`, then discards the header `BlockBuilder_finalize_block`
// returns and publishes its own, with a zero state root. Two edits of its block
// builder, in both the CommonJS and the ES module builds:
//   1. only pre-runtime items (the aura slot) are carried into the next block, as a
//      real block author does; runtime-deposited items belong to one block;
//   2. the published header takes the digest of the header the runtime finalized.
// The state root stays zero (docs/substrate.md says why the relayer does not need it).
// The script is idempotent and fails loudly if chopsticks' code is not what it expects
// (another version), rather than leaving a dev chain whose headers lack the commitment.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const MARKER = '/* isthmus: runtime digest */';
const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'node_modules/@acala-network/chopsticks-core/dist');

const edits = [
  [
    'let newLogs = !head.number ? await genesisDigestLogs(head) : parentHeader.digest.logs.toArray();',
    `let newLogs = (!head.number ? await genesisDigestLogs(head) : parentHeader.digest.logs.toArray()).filter((item)=>item.isPreRuntime) ${MARKER};`,
  ],
  [
    "const resp = await newBlock.call('BlockBuilder_finalize_block', []);",
    "const resp = await newBlock.call('BlockBuilder_finalize_block', []);\n        var isthmusRuntimeDigest = registry.createType('Header', resp.result).digest.toJSON();",
  ],
  [
    '        ...header.toJSON(),\n        extrinsicsRoot: mockExtrinsicRoot\n',
    '        ...header.toJSON(),\n        extrinsicsRoot: mockExtrinsicRoot,\n        digest: isthmusRuntimeDigest\n',
  ],
];

for (const flavour of ['cjs', 'esm']) {
  const path = join(dist, flavour, 'blockchain/block-builder.js');
  let text = readFileSync(path, 'utf8');
  if (text.includes(MARKER)) continue;
  for (const [from, to] of edits) {
    const at = text.indexOf(from);
    if (at < 0 || text.indexOf(from, at + 1) >= 0) {
      throw new Error(`${path}: expected exactly one occurrence of ${JSON.stringify(from)}; is this chopsticks 1.5.1?`);
    }
    text = text.replace(from, to);
  }
  writeFileSync(path, text);
  process.stdout.write(`patched ${path}\n`);
}
