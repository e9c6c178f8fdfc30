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

test('a page loads its bundle\'s main module and its own files, all preloaded; other pages load theirs when opened', async ({ page }) => {
  await asSuperadmin(page);
  // `<bundle>/<file>` of every WASM file or pack of them the browser fetches.
  const wasm: string[] = [];
  page.on('request', (r) => {
    if (/\.(wasm|pack)$/.test(r.url())) wasm.push(new URL(r.url()).pathname.split('/pkg/')[1] ?? '');
  });
  const preloaded = () =>
    page.locator('link[rel="preload"][as="fetch"]').evaluateAll((links) =>
      links.map((l) => new URL((l as HTMLLinkElement).href).pathname.split('/pkg/')[1]),
    );

  await page.goto('/signup');
  await hydrated(page);
  // The public bundle only: its main module and the signup page's pack, each fetched once, and
  // each named in the page so that the browser fetches them at once, not after the main module.
  expect(wasm).toContain('nest-public/nest-public_bg.wasm');
  expect(wasm).toContain('nest-public/signup_page.pack');
  expect(wasm.every((f) => f.startsWith('nest-public/')), wasm.join(' ')).toBe(true);
  expect(new Set(wasm).size).toBe(wasm.length);
  expect([...wasm].sort()).toEqual([...(await preloaded())].sort());
  await expect(page.getByRole('navigation', { name: 'Main' })).toHaveCount(0);

  // The public bundle has no dashboard pages: its router hands the address to the server.
  let seen = wasm.length;
  await page.getByRole('link', { name: 'Nest', exact: true }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await hydrated(page);
  const overview = wasm.slice(seen);
  expect(overview).toContain('nest/nest_bg.wasm');
  expect(overview).toContain('nest/home_page.pack');
  expect(overview.every((f) => f.startsWith('nest/')), overview.join(' ')).toBe(true);
  expect([...overview].sort()).toEqual([...(await preloaded())].sort());

  // Between dashboard pages the router navigates in place: the next page's files only.
  seen = wasm.length;
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Jobs' })).toBeVisible();
  const jobs = wasm.slice(seen);
  expect(jobs).toContain('nest/jobs_page.pack');
  expect(jobs).not.toContain('nest/nest_bg.wasm');
  expect(jobs.every((f) => f.startsWith('nest/') && !overview.includes(f)), jobs.join(' ')).toBe(true);
});

test('a page whose files cannot be fetched is loaded in full on navigation, and left as the server rendered it on a first load', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/');
  await hydrated(page);
  // As after an update of the server, which serves only the new version's files: the jobs
  // page's code cannot be fetched (not even by the preload when the pointer reaches the link).
  await page.route('**/pkg/nest/jobs_page.pack', (route) => route.abort());
  let loads = 0;
  page.on('load', () => loads++);
  const errors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const reloaded = page.waitForEvent('load');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
  await reloaded;
  await expect(page).toHaveURL(/\/jobs$/);
  // The server rendered the page; its code still fails, so the page stays as rendered (the
  // browser console says why) and is not loaded again and again.
  await expect(page.getByRole('heading', { level: 1, name: 'Jobs' })).toBeVisible();
  await expect.poll(() => errors.some((e) => e.includes('could not be fetched'))).toBe(true);
  expect(loads).toBe(1);
  // The rest of the dashboard still works.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();

  await page.unroute('**/pkg/nest/jobs_page.pack');
  await page.goto('/jobs');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1, name: 'Jobs' })).toBeVisible();
});
