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
