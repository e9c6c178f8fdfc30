import { test, expect, hydrated, asSuperadmin } from './fixtures';

test('the overview renders on the server with the sidebar and platform status', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/');
  await expect(page).toHaveTitle('Overview · Nest');
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' })).toHaveAttribute(
    'aria-current',
    'page',
  );
  await expect(page.getByTestId('database')).toContainText('SQLite');
  await expect(page.getByTestId('database')).toContainText('connected');
  await expect(page.getByText('3 tiers, 6 regions')).toBeVisible();
  await expect(page.getByText('No organizations yet.')).toBeVisible();
});

test('the page hydrates: the menu toggle and the refresh button respond', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await asSuperadmin(page);
  await page.goto('/');
  await hydrated(page);

  const toggle = page.getByRole('button', { name: 'Hide menu' });
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await toggle.click();
  await expect(page.getByRole('button', { name: 'Show menu' })).toHaveAttribute('aria-expanded', 'false');
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeHidden();
  await page.getByRole('button', { name: 'Show menu' }).click();
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();

  // The refresh button calls the platform_status server function from the browser.
  const call = page.waitForResponse((r) => r.url().endsWith('/api/platform_status') && r.status() === 200);
  await page.getByRole('button', { name: 'Refresh status' }).click();
  await call;
  await expect(page.getByTestId('database')).toContainText('SQLite');
  expect(errors).toEqual([]);
});

test('keyboard users can reach and use the menu toggle', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/');
  await hydrated(page);
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Hide menu' })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('button', { name: 'Show menu' })).toBeVisible();
});

test('/healthz reports the database', async ({ request }) => {
  const response = await request.get('/healthz');
  expect(response.status()).toBe(200);
  const body = await response.json();
  expect(body.status).toBe('ok');
  expect(body.database.kind).toBe('sqlite');
  expect(body.database.ok).toBe(true);
});

test('an unknown page says so, with a 404 and a way back', async ({ page }) => {
  await asSuperadmin(page);
  const response = await page.goto('/no-such-page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  await page.getByRole('link', { name: 'Go to the overview' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
});

test('public pages load only the public bundle; its links to the dashboard load the dashboard, hydrated', async ({ page }) => {
  await asSuperadmin(page);
  const wasm: string[] = [];
  page.on('request', (r) => {
    if (r.url().endsWith('.wasm')) wasm.push(new URL(r.url()).pathname.split('/').pop() ?? '');
  });
  await page.goto('/signup');
  await hydrated(page);
  expect(wasm).toEqual(['nest-public_bg.wasm']);
  await expect(page.getByRole('navigation', { name: 'Main' })).toHaveCount(0);

  // The public bundle has no dashboard pages: its router hands the address to the server.
  await page.getByRole('link', { name: 'Nest', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await hydrated(page);
  expect(wasm).toEqual(['nest-public_bg.wasm', 'nest_bg.wasm']);

  // Between dashboard pages the router navigates in place: no bundle is loaded again.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Jobs' })).toBeVisible();
  expect(wasm).toEqual(['nest-public_bg.wasm', 'nest_bg.wasm']);
});
