#!/usr/bin/env node
'use strict';
/**
 * Runs the compiled tests under build/test with `node --test`, which in
 * Node 20 takes file names but does not expand globs.
 *
 *   node scripts/run-tests.js [--unit | --e2e] [--node-option...] [filter...]
 *
 * --unit leaves out build/test/e2e/, --e2e runs only that folder. Other
 * arguments starting with "--" go to `node --test` unchanged (for example
 * --test-name-pattern=...); the rest are substrings a test file's path must
 * contain (any of them). Exits with node --test's exit code.
 */
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const BUILD_TESTS = path.join(ROOT, 'build', 'test');
const E2E_DIR = path.join(BUILD_TESTS, 'e2e') + path.sep;

/** Splits the command line into the suite, node options and path filters. */
function parseArgs(argv) {
  const options = { suite: 'all', nodeArgs: [], filters: [] };
  for (const arg of argv) {
    if (arg === '--unit' || arg === '--e2e') {
      if (options.suite !== 'all') fail('give at most one of --unit and --e2e');
      options.suite = arg.slice(2);
    } else if (arg.startsWith('--')) {
      options.nodeArgs.push(arg);
    } else {
      options.filters.push(arg);
    }
  }
  return options;
}

/** Lists every *.test.js below dir, depth first, in a stable order. */
function findTestFiles(dir) {
  const found = [];
  const entries = fs.readdirSync(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTestFiles(full));
    else if (entry.isFile() && entry.name.endsWith('.test.js')) found.push(full);
  }
  return found;
}

/**
 * tsc never deletes outputs, so a test whose source was removed or renamed
 * would keep running from build/ until someone cleans it by hand.
 */
function hasSource(file) {
  const relative = path.relative(path.join(ROOT, 'build'), file);
  return fs.existsSync(path.join(ROOT, relative.replace(/\.js$/, '.ts')));
}

function selectFiles(files, { suite, filters }) {
  return files.filter((file) => {
    const isE2e = file.startsWith(E2E_DIR);
    if (suite === 'unit' && isE2e) return false;
    if (suite === 'e2e' && !isE2e) return false;
    const shown = path.relative(ROOT, file);
    return filters.length === 0 || filters.some((f) => shown.includes(f));
  });
}

function fail(message) {
  process.stderr.write(`run-tests: ${message}\n`);
  process.exit(1);
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(BUILD_TESTS)) {
    fail('build/test not found; run `npm run build` first');
  }

  const all = findTestFiles(BUILD_TESTS);
  const stale = all.filter((file) => !hasSource(file));
  for (const file of stale) {
    const shown = path.relative(ROOT, file);
    process.stderr.write(`run-tests: skipping ${shown}: its .ts source is gone\n`);
  }
  const files = selectFiles(all.filter(hasSource), options);
  if (files.length === 0) {
    fail(`no compiled test files match (suite ${options.suite})`);
  }

  const args = ['--test', ...options.nodeArgs, ...files];
  const result = spawnSync(process.execPath, args, { cwd: ROOT, stdio: 'inherit' });
  if (result.error) fail(`could not start node: ${result.error.message}`);
  if (result.signal) fail(`node --test was killed by ${result.signal}`);
  process.exit(result.status ?? 1);
}

main();
