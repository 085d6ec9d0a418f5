// The README, followed literally by a new user: the package installed from
// the repository into a fresh project with the commands of "Install", and
// the example of "Verify a proof fetched from a running node" run as
// written against a real node (the fabstir-node binary the cargo tests
// build), once for the README's job and once for a job of 2^63 - 1 tokens,
// the largest count a node stores. Both code blocks are read from README.md,
// so the README cannot drift from what is tested.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { InputError, verifyProof } from '../src/index.js';
import { pkgRoot, repoRoot, skipOrFail } from './helpers.mjs';

const README = readFileSync(join(pkgRoot, 'README.md'), 'utf8');
const NODE_BIN = process.env.FABSTIR_NODE_BIN || join(repoRoot, 'target/debug/fabstir-node');
/** What "Install" calls the clone; the test's clone is this repository. */
const CLONE = '/path/to/fabstir-node';
/** The README's node address (the node's default); the test's node listens on a free port. */
const README_NODE = 'http://127.0.0.1:8080';
const MAX_TOKENS = (1n << 63n) - 1n;

/** The first fenced block of `lang` after the heading `heading`. */
function block(heading, lang) {
  const at = README.indexOf(`\n${heading}\n`);
  assert.ok(at >= 0, `README.md has no heading "${heading}"`);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(README.slice(at));
  assert.ok(m, `README.md has no ${lang} block under "${heading}"`);
  return m[1];
}

/** Replaces `from` (a string or regex) in `text`, asserting it occurs `count` times. */
function replaceCounted(text, from, to, count) {
  const re = typeof from === 'string' ? new RegExp(from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g') : from;
  const found = text.match(re)?.length ?? 0;
  assert.equal(found, count, `expected ${count} occurrence(s) of ${re} in the README's example, found ${found}`);
  return text.replace(re, to);
}

/** This environment without npm's per-run variables (an `npm test --prefix` would leak its prefix). */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== 'INIT_CWD') env[k] = v;
  }
  // Quieter and faster, not different: no audit or funding requests, and
  // packages the local cache already holds are not re-downloaded.
  return { ...env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_prefer_offline: 'true' };
}

/** Runs a shell command line in `cwd`; resolves with stdout, rejects with both streams. */
function sh(line, cwd, timeout = 180_000) {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', line], { cwd, env: cleanEnv(), timeout, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(Object.assign(new Error(`\`${line}\` failed (${error.code ?? error.signal}):\n${stdout}\n${stderr}`), { stderr }));
      else resolve(stdout);
    });
  });
}

/** Runs the node binary with `args` in `cwd`; resolves with {code, stdout, stderr}. */
function runNode(args, cwd) {
  return new Promise((resolve) => {
    execFile(NODE_BIN, args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? error.code : 0, stdout, stderr }));
  });
}

/** Starts `fabstir-node serve` in `cwd` on a free port; resolves with its start-up line and process. */
function startNode(cwd) {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE_BIN, ['serve', '--listen', '127.0.0.1:0'], { cwd, env: { ...process.env, FABSTIR_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      if (stderr.length < 20_000) stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`the node printed no start-up line in 60 s: ${stderr}`));
    }, 60_000);
    const lines = createInterface({ input: child.stdout });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve({ child, startup: JSON.parse(line) });
      } catch (e) {
        child.kill();
        reject(new Error(`unexpected start-up line ${line}: ${e.message}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the node exited (${code}) before starting: ${stderr}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** JSON text of `value` with BigInts as JSON integers (exact). */
function exactJson(value) {
  return JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `@@${v}@@` : v)).replace(/"@@(\d+)@@"/g, '$1');
}

/** Submits `result` and polls its proof until the state is proved, with a deadline; returns the body text. */
async function submitAndProve(base, result) {
  const posted = await fetch(`${base}/v1/results`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: exactJson(result) });
  assert.equal(posted.status, 202, await posted.text());
  const job = String(result.job_id);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const text = await (await fetch(`${base}/v1/proofs/${job}`)).text();
    const { state } = JSON.parse(text);
    if (state === 'proved') return text;
    assert.notEqual(state, 'failed', `job ${job} failed: ${text}`);
    assert.ok(Date.now() < deadline, `job ${job} not proved in 120 s: ${text}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

test('the README: install from the repository, then its example against a real node', { timeout: 600_000 }, async (t) => {
  if (!existsSync(NODE_BIN)) {
    return skipOrFail(t, `no node binary at ${NODE_BIN}: run cargo test -p fabstir-node --test it -- js_client:: first`);
  }
  const install = block('## Install', 'sh');
  const example = block('## Verify a proof fetched from a running node', 'js');
  const project = mkdtempSync(join(tmpdir(), 'fabstir-readme-'));
  let node;
  try {
    // A fresh project, and the README's install commands as written (the
    // clone's path is this repository).
    await sh('npm init -y', project);
    const commands = install
      .split('\n')
      .map((l) => l.replace(/\s+#.*$/, '').trim())
      .filter(Boolean);
    assert.ok(commands.some((c) => c.includes(CLONE)), `unexpected install block:\n${install}`);
    for (const command of commands) {
      try {
        await sh(command.replaceAll(CLONE, repoRoot.replace(/\/$/, '')), project);
      } catch (e) {
        if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET/.test(e.stderr ?? '')) {
          return skipOrFail(t, `the npm registry is unreachable: ${e.message}`);
        }
        throw e;
      }
    }
    // A copy with its dependencies, not a link into the repository.
    const installed = join(project, 'node_modules/@fabstir/zk-verify');
    assert.ok(lstatSync(installed).isDirectory() && !lstatSync(installed).isSymbolicLink(), 'the package is not copied into node_modules');
    for (const dep of ['@noble/curves', '@noble/hashes']) assert.ok(existsSync(join(project, 'node_modules', dep)), `${dep} is not installed`);
    // "npm ci installs it again": the lock file names the tarball.
    rmSync(join(project, 'node_modules'), { recursive: true });
    await sh('npm ci', project);
    assert.ok(existsSync(join(installed, 'package.json')), 'npm ci did not reinstall the package');

    // The node, started in the project as the README's example assumes
    // (`fabstir-node serve`: data in ./data, development keys).
    node = await startNode(project);
    const base = `http://${node.startup.listening}`;
    const vkId = /const vkId = '(0x[0-9a-f]{64})'/.exec(example)?.[1];
    assert.equal(vkId, node.startup.vk_id, "the example's vkId is not the development keys' vk_id");

    // The key, exported with the command in the example's comment.
    const exportCommand = /\/\/ fabstir-node (keys export-vk [^\n]*)/.exec(example)?.[1];
    assert.ok(exportCommand, "the example's comment gives no export-vk command");
    let args = exportCommand.trim().split(/\s+/);
    const help = await runNode(['keys', 'export-vk', '--help'], project);
    if (!help.stdout.includes('--keys-dir')) {
      // Until the node's `--keys-dir` rename lands, its old name (kept
      // afterwards as a hidden alias) stands in.
      args = args.map((a) => (a === '--keys-dir' ? '--keys' : a));
    }
    const exported = await runNode(args, project);
    assert.equal(exported.code, 0, `fabstir-node ${args.join(' ')}: ${exported.stderr}`);
    assert.equal(JSON.parse(exported.stdout).vk_id, vkId);

    // The example's result, submitted and proved; then the example as written.
    const literal = /const result = (\{[\s\S]*?\});/.exec(example)?.[1];
    assert.ok(literal, 'the example has no result object');
    const result = Function(`return (${literal});`)();
    await submitAndProve(base, result);
    const script = replaceCounted(example, README_NODE, base, 1);
    const expected = /console\.log\(verifyProof\([^\n]*\/\/ (\{ valid: true \})/.exec(example)?.[1];
    assert.equal(expected, '{ valid: true }', 'the example does not say what it prints');
    writeFileSync(join(project, 'verify.mjs'), script);
    assert.equal((await sh('node verify.mjs', project)).trim(), expected);

    // A job of 2^63 - 1 tokens: the node writes the count as a plain JSON
    // integer, which JSON.parse rounds; the example (which reads the body
    // as text) still verifies, with the count given as a BigInt.
    const big = { ...result, job_id: '43', tokens_used: MAX_TOKENS };
    const bigText = await submitAndProve(base, big);
    assert.match(bigText, new RegExp(`"tokens_used":${MAX_TOKENS}\\b`));
    assert.match(bigText, new RegExp(`"tokens":${MAX_TOKENS}\\b`));
    const rounded = JSON.parse(bigText);
    assert.throws(
      () => verifyProof(readFileSync(join(project, 'vk.json'), 'utf8'), rounded.proof, big, { hostId: rounded.host_id, vkId }),
      (e) => e instanceof InputError && e.field === 'proof.instance.tokens',
    );
    let bigScript = replaceCounted(script, /\b42\b/g, '43', 3);
    bigScript = replaceCounted(bigScript, /tokens_used: [^,}\s]+/g, `tokens_used: ${MAX_TOKENS}n`, 1);
    writeFileSync(join(project, 'verify-big.mjs'), bigScript);
    assert.equal((await sh('node verify-big.mjs', project)).trim(), expected);
  } finally {
    if (node) {
      const exited = new Promise((ok) => node.child.once('exit', ok));
      node.child.kill();
      await exited;
    }
    rmSync(project, { recursive: true, force: true });
  }
});
