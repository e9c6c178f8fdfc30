// Without JavaScript (or before the WASM has hydrated) the sign-in form still works: it posts to
// its server function, shows a mistake on the page, and never puts the password in the URL.
import { test, expect, asSuperadmin, ROOT_EMAIL, PASSWORD } from './fixtures';

test('signing in works with JavaScript disabled, and the password never reaches a URL', async ({ browser }) => {
  // Make sure the superadmin exists (a normal, scripted page).
  const setupContext = await browser.newContext();
  await asSuperadmin(await setupContext.newPage());
  await setupContext.close();

  const context = await browser.newContext({ javaScriptEnabled: false });
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const page = await context.newPage();
  const urls: string[] = [];
  page.on('request', (request) => {
    urls.push(request.url());
    if (request.url().includes('/api/login')) {
      expect(request.method()).toBe('POST');
    }
  });

  await page.goto('/audit');
  await expect(page).toHaveURL(/\/login\?redirect=%2Faudit$/);
  await page.getByLabel('Email').fill(ROOT_EMAIL);
  await page.getByLabel('Password', { exact: true }).fill('wrong password 1');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByText('Email or password is incorrect.')).toBeVisible();

  await page.getByLabel('Email').fill(ROOT_EMAIL);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Audit log' })).toBeVisible();

  for (const url of urls) {
    expect(url).not.toContain('password');
    expect(url).not.toContain(encodeURIComponent(PASSWORD));
  }
  await context.close();
});

test('a customer can sign up and pay with JavaScript disabled (or before the page hydrated)', async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const page = await context.newPage();
  await page.goto('/signup');
  await page.getByLabel(/^Starter/).check();
  await page.getByLabel('Organization name').fill('Plain Form Co');
  await page.getByLabel('Slug').fill('Not A Slug');
  await page.getByLabel('Owner email').fill('owner@plain-form.test');
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  // The mistake comes back beside its field, and nothing was created.
  await expect(page.locator('#field-slug-error')).toBeVisible();

  await page.getByLabel('Organization name').fill('Plain Form Co');
  await page.getByLabel('Slug').fill('plain-form-co');
  await page.getByLabel('Owner email').fill('owner@plain-form.test');
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await expect(page).toHaveURL(/\/signup\?token=[0-9a-f]{64}$/);
  await expect(page.getByText('Simulated Stripe — no real card is charged')).toBeVisible();
  await page.getByLabel('Card number').fill('4000 0000 0000 0002');
  await page.getByRole('button', { name: 'Pay and start my instance' }).click();
  await expect(page.locator('#field-card-error')).toContainText('declined');
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay and start my instance' }).click();
  await expect(page).toHaveURL(/\/pending\?token=[0-9a-f]{64}$/);
  // No script refreshes the page: reloading shows the payment received.
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('pending-payment')).toHaveText('paid', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await context.close();
});
