// Playwright runs Nest's own binary against a fresh SQLite data directory, in Debian's chromium.
// It never downloads a browser: executablePath points at /usr/bin/chromium.
import { defineConfig } from '@playwright/test';
import * as os from 'node:os';
import * as path from 'node:path';
import * as fs from 'node:fs';
import * as crypto from 'node:crypto';

const port = Number(process.env.NEST_E2E_PORT ?? 3101);
const baseURL = `http://127.0.0.1:${port}`;
const simPort = Number(process.env.NEST_E2E_SIM_PORT ?? 3199);
const repo = path.resolve(__dirname, '..');
const targetDir = process.env.CARGO_TARGET_DIR ?? path.join(repo, 'target');
const nestBin = process.env.NEST_BIN ?? path.join(targetDir, 'debug', 'nest');
// Created once by the main process; the workers (which load this file again) reuse it, so the
// tests can run `nest` commands against the server's own database.
const dataDir = process.env.NEST_E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'nest-e2e-'));
process.env.NEST_E2E_DATA_DIR = dataDir;
// The simulator's control API needs a token: chosen here, given to the server and the specs.
const simToken = process.env.NEST_E2E_SIM_TOKEN ?? crypto.randomBytes(16).toString('hex');
process.env.NEST_E2E_SIM_TOKEN = simToken;
process.env.NEST_E2E_BIN = nestBin;

export default defineConfig({
  testDir: './tests',
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 30_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  webServer: {
    command: nestBin,
    url: `${baseURL}/healthz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe',
    stderr: 'pipe',
    env: {
      NEST_ADDR: `127.0.0.1:${port}`,
      NEST_DATA_DIR: dataDir,
      DATABASE_URL: process.env.NEST_E2E_DATABASE_URL ?? '',
      LEPTOS_SITE_ROOT: path.join(repo, 'target', 'site'),
      NEST_LOG: 'warn',
      // The simulated cloud, quick and on its own loopback range.
      NEST_SIM_BOOT_DELAY_MS: '300',
      NEST_SIM_ACTION_DELAY_MS: '200',
      NEST_SIM_FIRST_IP: '127.77.0.2',
      // A fixed port, so the tests can script faults through the simulator's control API.
      NEST_SIM_ADDR: `127.0.0.1:${simPort}`,
      NEST_SIM_CONTROL_TOKEN: simToken,
      NEST_SMOKE_TIMEOUT_SECS: '4',
      // Health sweeps every 5 s, right after provisioning, with quick probes.
      NEST_HEALTH_INTERVAL_SECS: '5',
      NEST_HEALTH_GRACE_SECS: '0',
      NEST_HEALTH_PROBE_TIMEOUT_MS: '1000',
      // Reconciliation at every scheduler tick (5 s), so /reconcile's test sees its orphan soon.
      NEST_RECONCILE_INTERVAL_SECS: '5',
    },
  },
});
