import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { VERSION } from '../../src/version';
import { runCli } from './fake-api';

// Compiled tests live in build/test/cli, three levels below package.json.
const PACKAGE_JSON = path.join(__dirname, '..', '..', '..', 'package.json');

describe('version and start-up', () => {
  it('keeps the version constant equal to package.json', () => {
    const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { version: string };
    assert.equal(VERSION, pkg.version);
  });

  it('loads none of the heavy modules for version --client', async () => {
    const probe = path.join(__dirname, 'loaded-modules-probe.js');
    fs.writeFileSync(
      probe,
      "process.on('exit', () => process.stderr.write(JSON.stringify(Object.keys(require.cache))));",
    );
    try {
      const res = await runCli(['version', '--client'], { nodeArgs: ['--require', probe] });
      const loaded = (JSON.parse(res.stderr) as string[]).join('\n');
      for (const heavy of ['/yaml/', '/pino', '/undici/', '/manifest/', '/agent/', 'api/client']) {
        assert.ok(!loaded.includes(heavy), `${heavy} was loaded:\n${loaded}`);
      }
    } finally {
      fs.rmSync(probe);
    }
  });
});
