// Runs last (zzz-): it adds organizations and admins that earlier specs would count.
// A person on a slow link: the page's WASM and its route's pack arrive 4 s after the HTML. They
// fill every form as soon as it is there; what they typed must survive the page's hydration, and
// no form that changes something may ever put a field in a URL. Forms submitted before
// hydration post, and land where the hydrated page would have taken them.
import { test, expect, hydrated, asSuperadmin, opener } from './fixtures';
import type { BrowserContext, Page, Request } from '@playwright/test';

const DELAY_MS = 4_000;

/** Holds back every WASM module and route pack by DELAY_MS (routes added last are tried first). */
async function slowCode(context: BrowserContext) {
  await context.route(/\/pkg\/.*\.(wasm|pack)(\?.*)?$/, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS));
    await route.continue();
  });
}

/** Every URL the page asks for, and every URL it lands on. */
function recordUrls(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (request: Request) => urls.push(request.url()));
  page.on('framenavigated', (frame) => urls.push(frame.url()));
  return urls;
}

/** Opens `path` and waits only for its HTML (the code is still on its way). */
async function openBeforeCode(page: Page, path: string) {
  await page.goto(path, { waitUntil: 'domcontentloaded' });
  await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'false');
}

/** A field filled in, and what it holds. */
type Typed = { selector: string; value: string; checked?: boolean; group?: string };

/**
 * Fills every visible field of every form that posts, as a person would, before hydration;
 * returns each field with what was typed (or chosen).
 */
async function fillEveryForm(page: Page): Promise<Typed[]> {
  const fields = page.locator('form[method="post"] :is(input, textarea, select):visible');
  const count = await fields.count();
  const typed: Typed[] = [];
  for (let i = 0; i < count; i++) {
    const field = fields.nth(i);
    const tag = await field.evaluate((el) => el.tagName.toLowerCase());
    const type = ((await field.getAttribute('type')) ?? 'text').toLowerCase();
    const id = await field.getAttribute('id');
    if (!id || (await field.isDisabled())) continue;
    const selector = `#${id}`;
    if (tag === 'select') {
      const options = await field.locator('option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
      if (options.length < 2) continue;
      const value = options[options.length - 1];
      await field.selectOption(value);
      typed.push({ selector, value });
    } else if (type === 'checkbox' || type === 'radio') {
      if (await field.isChecked()) continue;
      await field.check();
      if (type === 'radio') {
        // Checking one radio unchecks the others of its group.
        const group = await field.getAttribute('name');
        for (let j = typed.length - 1; j >= 0; j--) {
          if (typed[j].group === group) typed.splice(j, 1);
        }
        typed.push({ selector, value: '', checked: true, group: group ?? '' });
      } else {
        typed.push({ selector, value: '', checked: true });
      }
    } else if (['submit', 'button', 'hidden'].includes(type)) {
      continue;
    } else {
      const value =
        type === 'email' ? `typed${i}@slow.test` : type === 'number' ? `${i + 2}` : type === 'password' ? `typed password ${i} long` : `typed-${i}`;
      await field.fill(value);
      typed.push({ selector, value });
    }
  }
  return typed;
}

async function expectSurvived(page: Page, typed: Typed[]) {
  for (const { selector, value, checked } of typed) {
    const field = page.locator(selector);
    if (checked) {
      await expect(field, selector).toBeChecked();
    } else {
      await expect(field, selector).toHaveValue(value);
    }
  }
}

function expectNotInUrls(urls: string[], typed: Array<{ value: string }>) {
  for (const url of urls) {
    for (const { value } of typed) {
      if (value.length < 4) continue;
      expect(url, `a typed value reached a URL`).not.toContain(encodeURIComponent(value));
      expect(url).not.toContain(value);
    }
  }
}

test.setTimeout(120_000);

test('what is typed on the public pages before they hydrate survives hydration', async ({ browser }) => {
  const context = await browser.newContext();
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  await slowCode(context);
  const page = await context.newPage();
  const urls = recordUrls(page);
  for (const path of ['/login', '/signup']) {
    await openBeforeCode(page, path);
    const typed = await fillEveryForm(page);
    expect(typed.length, path).toBeGreaterThan(1);
    await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true', { timeout: 30_000 });
    await expectSurvived(page, typed);
    expectNotInUrls(urls, typed);
  }
  await context.close();
});

test('what is typed on the admin forms before they hydrate survives hydration, and never reaches a URL', async ({ page, context }) => {
  await asSuperadmin(page);
  // An organization whose delete confirmation is typed into.
  await page.goto('/organizations/new');
  await hydrated(page);
  await page.getByLabel('Organization name').fill('Slow Link Co');
  await page.getByLabel('Slug').fill('slow-link');
  await page.getByLabel('Owner email').fill('owner@slow-link.test');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Slow Link Co' })).toBeVisible();
  const orgPage = new URL(page.url()).pathname;

  await slowCode(context);
  const urls = recordUrls(page);
  for (const path of ['/organizations/new', '/admins', '/tiers?new', '/alerts']) {
    await openBeforeCode(page, path);
    const typed = await fillEveryForm(page);
    await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true', { timeout: 30_000 });
    await expectSurvived(page, typed);
    expectNotInUrls(urls, typed);
  }
  // A confirmation opened and typed into before hydration (the disclosure opens natively).
  await openBeforeCode(page, orgPage);
  await opener(page, 'Delete').click();
  await page.getByLabel('Type slow-link to confirm').fill('slow-li');
  await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true', { timeout: 30_000 });
  await expect(page.getByLabel('Type slow-link to confirm')).toHaveValue('slow-li');
  await expect(page.getByRole('button', { name: 'Confirm: Delete' })).toBeDisabled();
});

test('forms submitted before hydration post, and land where the hydrated page would go', async ({ page, context }) => {
  await asSuperadmin(page);
  await slowCode(context);
  const urls = recordUrls(page);
  const posts: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
  });

  // A new organization: on to its page.
  await openBeforeCode(page, '/organizations/new');
  await page.getByLabel('Organization name').fill('Quick Typist Co');
  await page.getByLabel('Slug').fill('quick-typist');
  await page.getByLabel('Owner email').fill('owner@quick-typist.test');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Quick Typist Co' })).toBeVisible();
  expect(posts).toContain('/api/create_organization');

  // A new admin with a one-time link: the link is shown on the page the post comes back to.
  await openBeforeCode(page, '/admins');
  await page.getByLabel('Email', { exact: true }).fill('quick@slow.test');
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByText('quick@slow.test was added as admin.')).toBeVisible();
  await expect(page.getByTestId('set-password-link')).toContainText('/set-password?token=');
  expect(posts).toContain('/api/add_admin');
  // Shown once: a reload no longer has it.
  await page.reload();
  await expect(page.getByTestId('set-password-link')).toHaveCount(0);

  // A mistake comes back as an error on the page, and nothing typed is in any URL.
  await openBeforeCode(page, '/admins');
  await page.getByLabel('Email', { exact: true }).fill('not-an-email');
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByTestId('posted-error')).toBeVisible();
  expectNotInUrls(urls, [{ value: 'quick@slow.test' }, { value: 'not-an-email' }, { value: 'owner@quick-typist.test' }]);
});

test('with JavaScript disabled the admin forms work too: confirmations open, actions post, mistakes show', async ({ browser, page }) => {
  await asSuperadmin(page);
  const context = await browser.newContext({ javaScriptEnabled: false, storageState: await page.context().storageState() });
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const plain = await context.newPage();
  const urls = recordUrls(plain);

  // Create an organization, then suspend it through its confirmation.
  await plain.goto('/organizations/new');
  await plain.getByLabel('Organization name').fill('Plain Admin Co');
  await plain.getByLabel('Slug').fill('plain-admin');
  await plain.getByLabel('Owner email').fill('owner@plain-admin.test');
  await plain.getByRole('button', { name: 'Create organization' }).click();
  await expect(plain.getByRole('heading', { level: 1, name: 'Plain Admin Co' })).toBeVisible();
  // Without JavaScript nothing updates live: reload until it is up.
  await expect(async () => {
    await plain.reload();
    await expect(plain.getByTestId('org-status')).toHaveText('active', { timeout: 1_000 });
  }).toPass({ timeout: 90_000 });

  // Deleting with the wrong slug typed is refused by the server, and said at the top; with the
  // right one it goes ahead.
  await opener(plain, 'Delete').click();
  await plain.getByLabel('Type plain-admin to confirm').fill('wrong');
  await plain.getByRole('button', { name: 'Confirm: Delete' }).click();
  await expect(plain.getByTestId('posted-error')).toContainText('type plain-admin to confirm');
  await expect(plain.getByTestId('org-status')).toHaveText('active');
  await opener(plain, 'Delete').click();
  await plain.getByLabel('Type plain-admin to confirm').fill('plain-admin');
  await plain.getByRole('button', { name: 'Confirm: Delete' }).click();
  await expect(plain.getByTestId('org-status')).toHaveText(/deleting|deleted/);
  await expect(plain.getByTestId('posted-error')).toHaveCount(0);

  // A tier: created through its form (a link opens it), then deleted after its confirmation.
  await plain.goto('/tiers');
  await plain.getByRole('link', { name: 'New tier' }).click();
  await plain.getByLabel('Name').fill('Plain Tier');
  await plain.getByLabel('Code').fill('plain-tier');
  await plain.getByLabel('Hetzner server type').fill('cx22');
  await plain.getByLabel('vCPUs').fill('2');
  await plain.getByLabel('Memory (GB)').fill('4');
  await plain.getByLabel('Disk (GB)').fill('40');
  await plain.getByLabel('Monthly price').fill('9.00');
  await plain.getByRole('button', { name: 'Save tier' }).click();
  const row = plain.getByTestId('tiers').getByRole('row', { name: /Plain Tier/ });
  await expect(row).toBeVisible();
  await opener(row, 'Delete').click();
  await row.getByRole('button', { name: 'Yes, delete Plain Tier' }).click();
  await expect(plain.getByTestId('tiers').getByRole('row', { name: /Plain Tier/ })).toHaveCount(0);

  // An admin added with a one-time link: the link is shown once on the page it comes back to.
  await plain.goto('/admins');
  await plain.getByLabel('Email', { exact: true }).fill('plain@nest.test');
  await plain.getByRole('button', { name: 'Add admin' }).click();
  await expect(plain.getByTestId('set-password-link')).toContainText('/set-password?token=');
  const added = plain.getByRole('row', { name: /plain@nest\.test/ });
  await opener(added, 'Remove').click();
  await added.getByRole('button', { name: 'Yes, remove' }).click();
  await expect(plain.getByRole('row', { name: /plain@nest\.test/ })).toHaveCount(0);

  expectNotInUrls(urls, [{ value: 'owner@plain-admin.test' }, { value: 'plain@nest.test' }, { value: 'Plain Tier' }]);
  await context.close();
});
