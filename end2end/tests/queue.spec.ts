// (Named queue.spec so that it runs after the specs that count every organization.)
// The fleet-wide jobs page: a provisioning job that failed shows its failed step and error;
// after the cause is repaired, "Retry" queues it again and the row turns green live.
import { test, expect, hydrated, asSuperadmin } from './fixtures';

test.describe.configure({ mode: 'serial' });
test.setTimeout(150_000);

const SIM = `http://127.0.0.1:${process.env.NEST_E2E_SIM_PORT ?? 3199}/_sim`;
// The simulator's control API token (set by playwright.config.ts).
const SIM_HEADERS = { 'x-sim-token': process.env.NEST_E2E_SIM_TOKEN ?? '' };

test('a failed job is shown on /jobs and a retry turns it green live', async ({ page }) => {
  await asSuperadmin(page);
  // The next server's web service fails its smoke test, so the create job fails for good.
  const fail = await page.request.post(`${SIM}/next-server/services/web?name=nest-jobs-co`, { headers: SIM_HEADERS });
  expect(fail.status()).toBe(204);
  await page.goto('/organizations/new');
  await hydrated(page);
  await page.getByLabel('Organization name').fill('Jobs Co');
  await page.getByLabel('Slug').fill('jobs-co');
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.getByLabel('Owner email').fill('owner@jobs-co.test');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByTestId('org-status')).toHaveText('error', { timeout: 90_000 });
  const serverId = (await page.locator('dt:text-is("Hetzner id") + dd').textContent())?.trim();

  await page.goto('/jobs?state=failed&org=jobs-co');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1, name: 'Jobs' })).toBeVisible();
  await expect(page.getByLabel('State')).toHaveValue('failed');
  const row = page.locator('[data-testid="fleet-jobs"] tbody tr').first();
  await expect(row).toHaveAttribute('data-state', 'failed');
  await expect(row).toContainText('create');
  await expect(row).toContainText('jobs-co');
  await expect(row).toContainText('Smoke test (Convex :3210, Web :3000)');
  await expect(row).toContainText('Web :3000/ answered HTTP 500');

  // Repair the service, then retry from /jobs (all states, so the row stays in view).
  const repair = await page.request.post(`${SIM}/servers/${serverId}/services/web`, { headers: SIM_HEADERS, data: { failing: false } });
  expect(repair.status()).toBe(204);
  await page.goto('/jobs?org=jobs-co');
  await hydrated(page);
  const job = page.locator('[data-testid="fleet-jobs"] tbody tr[data-state="failed"]').first();
  const testId = await job.getAttribute('data-testid');
  await job.getByRole('button', { name: /Retry job/ }).click();
  const same = page.getByTestId(testId!);
  await expect(same).toHaveAttribute('data-state', 'succeeded', { timeout: 90_000 });
  await expect(same.locator('.badge')).toHaveText('succeeded');
  await expect(same.getByRole('button', { name: /Retry job/ })).toHaveCount(0);

  // The organization left `error` with the retry and is active again.
  await page.goto('/organizations?q=jobs-co');
  await hydrated(page);
  await page.getByRole('link', { name: 'Jobs Co' }).click();
  await expect(page.getByTestId('org-status')).toHaveText('active');
});
