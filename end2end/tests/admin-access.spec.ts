// Admin access as a new admin would walk through it: the setup wizard, signing out and back in,
// mistakes and lockouts, adding and removing an admin, and reading the audit log.
import { test, expect, opener, hydrated, signIn, asSuperadmin, ROOT_EMAIL, PASSWORD } from './fixtures';

test.describe.configure({ mode: 'serial' });

test('the setup wizard creates the first superadmin and opens the dashboard', async ({ page }) => {
  await page.goto('/audit');
  await expect(page).toHaveURL(/\/setup$/);
  await expect(page.getByRole('heading', { name: 'Set up Nest' })).toBeVisible();
  await hydrated(page);

  await page.getByLabel('Email').fill(ROOT_EMAIL);
  await page.getByLabel('Password', { exact: true }).fill('short');
  await page.getByLabel('Confirm password').fill('short');
  await page.getByRole('button', { name: 'Create superadmin' }).click();
  await expect(page.locator('#field-password-error')).toContainText('at least 12 characters');

  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByLabel('Confirm password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create superadmin' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(page.getByTestId('signed-in-as')).toContainText(`${ROOT_EMAIL} · superadmin`);

  // Setup is closed now.
  await page.goto('/setup');
  await expect(page).toHaveURL(/\/login$/);
});

test('signing out, then back in, returns to the page first asked for', async ({ page }) => {
  await asSuperadmin(page);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);

  await page.goto('/audit?action=auth.login');
  await expect(page).toHaveURL(/\/login\?redirect=%2Faudit%3Faction%3Dauth\.login$/);
  await signIn(page, ROOT_EMAIL, PASSWORD);
  await expect(page).toHaveURL(/\/audit\?action=auth\.login$/);
  await expect(page.getByRole('heading', { name: 'Audit log' })).toBeVisible();
});

test('a wrong password gets one clear message', async ({ page }) => {
  await page.goto('/login');
  await signIn(page, ROOT_EMAIL, 'not my password 1');
  await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
  await expect(page).toHaveURL(/\/login$/);
});

test('too many failures lock the account with a try-again time', async ({ page }) => {
  await page.goto('/login');
  for (let i = 0; i < 5; i++) {
    await signIn(page, 'victim@nest.test', `guess number ${i}!`);
    await expect(page.getByRole('alert')).toHaveText('Email or password is incorrect.');
  }
  await signIn(page, 'victim@nest.test', 'guess number 6!');
  await expect(page.getByRole('alert')).toHaveText('Too many failed sign-in attempts. Try again in 15 minutes.');
});

test('a superadmin adds an admin who signs in elsewhere, then removes them', async ({ page, browser }) => {
  await asSuperadmin(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admins' }).click();
  await expect(page.getByRole('heading', { name: 'Platform admins' })).toBeVisible();

  await page.getByLabel('Email').fill('bee@nest.test');
  await page.getByLabel('Role').selectOption('admin');
  await page.getByLabel('Type an initial password').check();
  await page.getByLabel('Initial password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByRole('status')).toContainText('bee@nest.test was added as admin.');
  const row = page.getByRole('row', { name: /bee@nest\.test/ });
  await expect(row).toContainText('admin');

  // A one-time link for another admin is shown once.
  await page.getByLabel('Email').fill('later@nest.test');
  await page.getByLabel('Generate a one-time set-password link').check();
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByTestId('set-password-link')).toContainText('/set-password?token=');

  // Bee signs in from another browser.
  const other = await browser.newContext();
  await other.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const bee = await other.newPage();
  await bee.goto('/');
  await expect(bee).toHaveURL(/\/login\?redirect=%2F$/);
  await signIn(bee, 'bee@nest.test', PASSWORD);
  await expect(bee.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(bee.getByTestId('signed-in-as')).toContainText('bee@nest.test · admin');
  await expect(bee.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Admins' })).toHaveCount(0);

  // The superadmin removes Bee, with a confirmation step.
  await opener(row, 'Remove').click();
  await row.getByRole('button', { name: 'Yes, remove' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'no longer an admin' })).toHaveText('bee@nest.test is no longer an admin.');
  await expect(page.getByRole('row', { name: /bee@nest\.test/ })).toHaveCount(0);

  // Bee's session is gone; signing in again lands on /unauthorized.
  await bee.reload();
  await expect(bee).toHaveURL(/\/login/);
  await signIn(bee, 'bee@nest.test', PASSWORD);
  await expect(bee).toHaveURL(/\/unauthorized$/);
  await expect(bee.getByRole('heading', { name: 'Not authorized' })).toBeVisible();
  await other.close();
});

test('the audit page shows those actions and its filters work', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/audit');
  await hydrated(page);
  const table = page.getByRole('table');
  for (const action of ['setup.completed', 'auth.login_failed', 'admin.added', 'admin.removed', 'auth.logout']) {
    await expect(table.getByRole('cell', { name: action, exact: true }).first()).toBeVisible();
  }

  await page.getByLabel('Action').selectOption('admin.removed');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page).toHaveURL(/action=admin\.removed/);
  await expect(table.getByRole('row')).toHaveCount(2); // header + one removal
  await expect(table).toContainText('bee@nest.test');

  await page.goto('/audit?actor=victim');
  await expect(page.getByRole('table').getByRole('row')).toHaveCount(7); // header + 5 failures + 1 blocked
  await page.goto('/audit?from=2000-01-01&to=2000-01-02');
  await expect(page.getByText('No audit entries match these filters.')).toBeVisible();
});
