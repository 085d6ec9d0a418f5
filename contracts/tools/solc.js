#!/usr/bin/env node
// A stand-in for the native `solc` binary, for forge (foundry.toml: solc = "tools/solc.js").
// No native solc can be downloaded on our machines, so forge runs solcjs (the npm `solc`
// package pinned in package.json) through this script. Forge needs only two calls:
//   --version        prints the version; forge parses the last line ("Version: <semver>")
//   --standard-json  reads the standard-JSON input on stdin, writes the output on stdout
// Other arguments forge passes (--allow-paths, --base-path, ...) are ignored: its input
// carries every source's content, so no import callback is needed.
'use strict';
const solc = require('solc');

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(
    `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`,
  );
} else if (args.includes('--standard-json')) {
  const chunks = [];
  process.stdin.on('data', (chunk) => chunks.push(chunk));
  process.stdin.on('end', () => {
    process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
  });
} else {
  process.stderr.write('tools/solc.js: only --version and --standard-json are supported\n');
  process.exit(2);
}
