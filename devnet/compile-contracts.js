#!/usr/bin/env node
// Compiles onchain/evm/src/*.sol with the pinned solc-js and writes one artifact per
// deployable contract to onchain/evm/artifacts/<Name>.json (ABI, creation bytecode,
// compiler settings). Output is deterministic, so CI can require that the committed
// artifacts equal a rebuild (`make contracts-check`).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const root = path.resolve(__dirname, '..', 'onchain', 'evm');
const srcDir = path.join(root, 'src');
const outDir = path.join(root, 'artifacts');
const EVM_VERSION = 'cancun';
const DEPLOYABLE = ['Outbox', 'Inbox', 'EchoRecipient', 'ClearingApp', 'SinkRecipient', 'ProtocolHarness'];

const sources = {};
for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') };
}
const settings = {
  evmVersion: EVM_VERSION,
  optimizer: { enabled: true, runs: 1000 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};
const input = { language: 'Solidity', sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));
// Warnings fail the build too: the contracts are small enough to keep clean.
const errors = output.errors || [];
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length) process.exit(1);

fs.mkdirSync(outDir, { recursive: true });
for (const name of DEPLOYABLE) {
  const c = output.contracts[`${name}.sol`][name];
  const artifact = {
    contractName: name,
    compiler: { solc: solc.version(), evmVersion: EVM_VERSION, optimizer: settings.optimizer },
    abi: c.abi,
    bytecode: '0x' + c.evm.bytecode.object,
    deployedBytecode: '0x' + c.evm.deployedBytecode.object,
  };
  fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
  console.log(`${name}: ${c.evm.deployedBytecode.object.length / 2} bytes deployed`);
}
