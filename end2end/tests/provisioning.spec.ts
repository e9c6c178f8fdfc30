// Provisioning as an admin watches it, on the simulated cloud: progress reaches `active` live
// (no reload), a failing service fails the smoke test with the step shown, retry recovers, and
// delete removes the server (also from /vpses).
import { test, expect, opener, hydrated, asSuperadmin, createOrganization, engineIdle } from './fixtures';

test.describe.configure({ mode: 'serial' });
// Provisioning takes a few seconds per server, behind the earlier specs' queue.
test.setTimeout(150_000);

const SIM = `http://127.0.0.1:${process.env.NEST_E2E_SIM_PORT ?? 3199}/_sim`;
// The simulator's control API token (set by playwright.config.ts).
const SIM_HEADERS = { 'x-sim-token': process.env.NEST_E2E_SIM_TOKEN ?? '' };

test('the job progress reaches active on screen without a reload', async ({ page }) => {
  await asSuperadmin(page);
  await engineIdle(page);
  await expect(page.getByTestId('simulated-cloud')).toHaveText('Simulated cloud');
  // Hetzner's create request hangs for 3 s, so the page is open before the server exists.
  const fault = await page.request.post(`${SIM}/faults`, {
    headers: SIM_HEADERS,
    data: { method: 'POST', path: '/servers', hang_ms: 3000 },
  });
  expect(fault.status()).toBe(204);
  let navigations = 0;
  await createOrganization(page, 'Live Co', 'live-co');
  page.on('framenavigated', () => navigations++);
  await expect(page.getByTestId('org-status')).toHaveText(/pending|provisioning/);
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 60_000 });
  const progress = page.locator('[data-testid^="progress-"]').first();
  await expect(progress.locator('li[data-state="done"]')).toHaveCount(7);
  await expect(progress).toContainText('Smoke test (Convex :3210, Web :3000)');
  await expect(progress).toContainText('Mark the organization active');
  expect(navigations).toBe(0);
  await expect(page.getByText(/live-co\.localhost → 127\.77\.\d+\.\d+:3000 \(enabled\)/)).toBeVisible();
});

test('a failing web service fails the smoke test; retry recovers; delete removes the server', async ({ page }) => {
  await asSuperadmin(page);
  const fail = await page.request.post(`${SIM}/next-server/services/web?name=nest-smoke-co`, { headers: SIM_HEADERS });
  expect(fail.status()).toBe(204);
  await createOrganization(page, 'Smoke Co', 'smoke-co');
  await expect(page.getByTestId('org-status')).toHaveText('error', { timeout: 60_000 });
  await expect(page.getByTestId('status-reason')).toContainText('Smoke test');
  await expect(page.getByTestId('status-reason')).toContainText('Web :3000/ answered HTTP 500');
  const failed = page.locator('[data-testid^="progress-"] li[data-state="failed"]');
  await expect(failed).toContainText('Smoke test (Convex :3210, Web :3000)');

  // Repair the service, then retry from the page.
  const serverId = (await page.locator('dt:text-is("Hetzner id") + dd').textContent())?.trim();
  const repair = await page.request.post(`${SIM}/servers/${serverId}/services/web`, { headers: SIM_HEADERS, data: { failing: false } });
  expect(repair.status()).toBe(204);
  await opener(page, 'Retry the failed create job').click();
  await page.getByRole('button', { name: 'Confirm: Retry the failed create job' }).click();
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 60_000 });

  await page.goto('/vpses');
  await hydrated(page);
  const row = page.getByTestId('vpses').getByRole('row', { name: /nest-smoke-co/ });
  await expect(row).toContainText('running');
  await expect(row).toContainText('cx22');

  await row.getByRole('link', { name: 'Smoke Co' }).click();
  await hydrated(page);
  await opener(page, 'Delete').click();
  await page.getByLabel('Type smoke-co to confirm').fill('smoke-co');
  await page.getByRole('button', { name: 'Confirm: Delete' }).click();
  await expect(page.getByTestId('org-status')).toHaveText('deleted', { timeout: 60_000 });

  await page.goto('/vpses?q=smoke-co');
  await expect(page.getByText('No server matches these filters.')).toBeVisible();
  await page.goto('/vpses?q=smoke-co&deleted=1');
  await expect(page.getByTestId('vpses').getByRole('row', { name: /nest-smoke-co/ })).toContainText('deleted');
});

test('the organization list and /vpses update without a reload; /vpses pages', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/organizations?q=list-live');
  await hydrated(page);
  await expect(page.getByText('No organization matches these filters.')).toBeVisible();
  const vpses = await page.context().newPage();
  await vpses.goto('/vpses?q=list-live');
  await hydrated(vpses);
  await expect(vpses.getByText('No server matches these filters.')).toBeVisible();

  // Someone else creates an organization (here: through the API).
  const tiers = await (await page.request.post('/api/list_tiers', { form: {} })).json();
  const starter = tiers.find((t: { code: string }) => t.code === 'starter').id;
  const created = await page.request.post('/api/create_organization', {
    form: { name: 'List Live', slug: 'list-live', owner_email: 'o@list-live.test', tier_id: String(starter), region: 'ash' },
  });
  expect(created.status()).toBe(200);

  const row = page.getByRole('row', { name: /List Live/ });
  await expect(row).toBeVisible({ timeout: 30_000 });
  await expect(row).toContainText('active', { timeout: 60_000 });
  const vpsRow = vpses.getByTestId('vpses').getByRole('row', { name: /nest-list-live/ });
  await expect(vpsRow).toContainText('running', { timeout: 60_000 });
  await expect(vpsRow).toContainText('ash');

  // Earlier specs created more servers than fit on one page.
  await vpses.goto('/vpses');
  await hydrated(vpses);
  await expect(vpses.getByTestId('vpses').getByRole('row')).toHaveCount(26);
  await vpses.getByRole('link', { name: 'Next page' }).click();
  await expect(vpses).toHaveURL(/after=/);
  await expect(vpses.getByRole('link', { name: 'First page' })).toBeVisible();
});
