// Reconciliation: a server made straight through Hetzner's API with Nest's label (no
// organization owns it) appears on /reconcile live, as the periodic task finds it, and an admin
// deletes it after typing its name; the finding is settled at once and the server is gone.
import { test, expect, hydrated, asSuperadmin } from './fixtures';

test.setTimeout(120_000);

const API = `http://127.0.0.1:${process.env.NEST_E2E_SIM_PORT ?? 3199}/v1`;

test('an orphan server appears on /reconcile live and is deleted after the typed confirmation', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/reconcile');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1, name: 'Reconciliation' })).toBeVisible();

  // Made behind Nest's back, while the page is open.
  const name = `stray-${Date.now()}`;
  const created = await page.request.post(`${API}/servers`, {
    headers: { authorization: 'Bearer someone-else' },
    data: { name, server_type: 'cx22', image: 'ubuntu-24.04', location: 'fsn1', labels: { 'managed-by': 'nest' } },
  });
  expect(created.status()).toBe(201);
  const serverId = (await created.json()).server.id;

  const row = page.locator('[data-testid="findings"] tbody tr', { hasText: name });
  await expect(row).toContainText('orphan_server', { timeout: 60_000 });
  await expect(row).toContainText(`orphan server ${name} (#${serverId}, cx22)`);

  await row.locator('summary').click();
  const confirm = row.getByLabel(`Type ${name} to confirm`);
  const submit = row.locator('form button[type="submit"]');
  await expect(submit).toHaveText('Delete the server at Hetzner');
  await confirm.fill('not-the-name');
  await submit.click();
  await expect(row.locator('.field-error')).toContainText(`type ${name} exactly to confirm`);

  await confirm.fill(name);
  await submit.click();
  await expect(row).toHaveCount(0);

  // Gone at Hetzner, and listed among the resolved findings.
  await expect
    .poll(async () => (await page.request.get(`${API}/servers/${serverId}`, { headers: { authorization: 'Bearer x' } })).status(), { timeout: 30_000 })
    .toBe(404);
  await page.goto('/reconcile?state=resolved');
  await hydrated(page);
  await expect(page.locator('[data-testid="findings"] tbody tr', { hasText: name })).toContainText('resolved');
});

test('without JavaScript, an orphan is deleted through the posted form', async ({ browser }) => {
  // Sign in on a normal page, then carry the session into a context without JavaScript.
  const scripted = await browser.newContext();
  const setup = await scripted.newPage();
  await asSuperadmin(setup);
  const state = await scripted.storageState();
  const name = `stray-nojs-${Date.now()}`;
  const created = await setup.request.post(`${API}/servers`, {
    headers: { authorization: 'Bearer someone-else' },
    data: { name, server_type: 'cx22', image: 'ubuntu-24.04', location: 'fsn1', labels: { 'managed-by': 'nest' } },
  });
  expect(created.status()).toBe(201);
  await scripted.close();

  const context = await browser.newContext({ javaScriptEnabled: false, storageState: state });
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const page = await context.newPage();
  const row = page.locator('[data-testid="findings"] tbody tr', { hasText: name });
  await expect(async () => {
    await page.goto('/reconcile');
    await expect(row).toContainText('orphan_server', { timeout: 1_000 });
  }).toPass({ timeout: 60_000 });
  const posts: string[] = [];
  page.on('request', (request) => {
    if (request.url().includes('/api/act_on_finding')) posts.push(request.method());
  });
  await row.locator('summary').click();
  await row.getByLabel(`Type ${name} to confirm`).fill(name);
  await row.locator('form button[type="submit"]').click();
  await expect(page).toHaveURL(/\/reconcile$/);
  await expect(page.locator('[data-testid="findings"] tbody tr', { hasText: name })).toHaveCount(0);
  expect(posts).toEqual(['POST']);
  await context.close();
});
