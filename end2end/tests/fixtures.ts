// Shared test setup: every page blocks non-loopback requests, so a test can never reach the
// internet; helpers wait for hydration and sign the superadmin in.
import { execFileSync } from 'node:child_process';
import { test as base, expect, type Locator, type Page } from '@playwright/test';

export const ROOT_EMAIL = 'root@nest.test';
export const PASSWORD = 'correct horse battery 9';

export const test = base.extend({
  context: async ({ context }, use) => {
    await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
    await use(context);
  },
});

/** Waits until the WASM bundle has hydrated the page (the layout flips `data-hydrated`). */
/** The summary that opens a disclosure (an action's confirmation, a note form), by its text. */
export function opener(scope: Page | Locator, text: string | RegExp): Locator {
  const name = typeof text === 'string' ? new RegExp(`^\\s*${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`) : text;
  return scope.locator('summary').filter({ hasText: name });
}

export async function hydrated(page: Page) {
  await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true');
}

/** Signs in through the login page (the page must be at /login). */
export async function signIn(page: Page, email: string, password: string) {
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** Makes sure the superadmin exists and this page is signed in as them; ends on `/`. */
export async function asSuperadmin(page: Page) {
  await page.goto('/');
  if (new URL(page.url()).pathname === '/setup') {
    await hydrated(page);
    await page.getByLabel('Email').fill(ROOT_EMAIL);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Confirm password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create superadmin' }).click();
  } else if (new URL(page.url()).pathname === '/login') {
    await signIn(page, ROOT_EMAIL, PASSWORD);
  }
  await expect(page.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await hydrated(page);
}

/** Creates an organization through `/organizations/new`; ends on its page, hydrated. */
export async function createOrganization(page: Page, name: string, slug: string) {
  await page.goto('/organizations/new');
  await hydrated(page);
  await page.getByLabel('Organization name').fill(name);
  await page.getByLabel('Slug').fill(slug);
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.getByLabel('Owner email').fill(`owner@${slug}.test`);
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('heading', { level: 1, name })).toBeVisible();
  await hydrated(page);
}

/** Waits until no organization is still being provisioned (earlier specs create many). */
export async function engineIdle(page: Page) {
  await expect
    .poll(
      async () => {
        let busy = 0;
        for (const status of ['pending', 'provisioning', 'deploying']) {
          const response = await page.request.post('/api/list_organizations', {
            form: { 'query[status]': status, 'query[sort]': 'Newest' },
          });
          busy += (await response.json()).rows.length;
        }
        return busy;
      },
      { timeout: 90_000 },
    )
    .toBe(0);
}

export { expect };

/** Runs a `nest` command against the test server's database (e.g. `add-signup`). */
export function nest(args: string[]): string {
  return execFileSync(process.env.NEST_E2E_BIN!, args, {
    env: {
      ...process.env,
      NEST_DATA_DIR: process.env.NEST_E2E_DATA_DIR!,
      DATABASE_URL: process.env.NEST_E2E_DATABASE_URL ?? '',
      NEST_LOG: 'warn',
    },
    encoding: 'utf8',
  });
}
