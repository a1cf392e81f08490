/**
 * The shipped configuration samples are valid: the systemd unit (systemd-analyze verify, when present),
 * the /etc/tapvs sample's options (accepted by tapvsd's parser) and rules (accepted by -R's parser), and
 * the Dockerfile's build steps being .ci/run's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRestoreText } from '../../src/cli/restore-input.js';
import { PACKAGE_ROOT, TAPVSD_JS } from '../../src/lab/topology.js';

const read = (p: string): string => fs.readFileSync(path.join(PACKAGE_ROOT, p), 'utf8');

function has(cmd: string): boolean {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('packaging', () => {
  it.skipIf(!has('systemd-analyze'))('the systemd unit verifies, reloads with SIGHUP and reads the env file', () => {
    const unit = read('packaging/systemd/tapvsd.service');
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(unit).toMatch(/^EnvironmentFile=\/etc\/tapvs\/tapvsd\.env$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/tapvsd \$TAPVSD_OPTS --rules \/etc\/tapvs\/rules$/m);
    // verify checks that the binary exists: point ExecStart at one that does.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tapvs-unit-'));
    try {
      fs.writeFileSync(path.join(dir, 'tapvsd.service'), unit.replace('/usr/local/bin/tapvsd', '/bin/true'));
      const r = spawnSync('systemd-analyze', ['verify', path.join(dir, 'tapvsd.service')], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!fs.existsSync(TAPVSD_JS))("the sample TAPVSD_OPTS and rules are accepted by tapvsd's and -R's parsers", () => {
    const env = read('packaging/etc-tapvs/tapvsd.env');
    const m = /^TAPVSD_OPTS="([^"]*)"$/m.exec(env);
    expect(m).not.toBeNull();
    // Options before --help are parsed and checked; --help then exits 0 without starting anything.
    const out = execFileSync(process.execPath, [TAPVSD_JS, ...m![1].split(/\s+/), '--rules', '/etc/tapvs/rules', '--help'], { encoding: 'utf8' });
    expect(out).toMatch(/^Usage: tapvsd/);
    for (const file of ['packaging/etc-tapvs/rules', 'docker/sidecar-rules']) {
      const parsed = parseRestoreText(read(file));
      expect('error' in parsed ? `${file}:${parsed.line}: ${parsed.error}` : 'ok').toBe('ok');
    }
  });

  it("the Dockerfile builds as .ci/run does (npm ci, npm run build) and needs only NET_ADMIN and the tun device", () => {
    const dockerfile = read('docker/Dockerfile');
    expect(read('.ci/run')).toMatch(/^npm ci$/m);
    expect(dockerfile).toMatch(/^RUN npm ci\nRUN npm run build\n/m);
    expect(dockerfile).toMatch(/^FROM node:20-bookworm AS build$/m);
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim$/m);
    const compose = read('docker/compose.sidecar.yaml');
    expect(compose).toMatch(/network_mode: "service:app"/);
    expect(compose).toMatch(/cap_drop: \[ALL\]/);
    expect(compose).toMatch(/cap_add: \[NET_ADMIN\]/);
    expect(compose).toMatch(/"\/dev\/net\/tun:\/dev\/net\/tun"/);
  });
});
