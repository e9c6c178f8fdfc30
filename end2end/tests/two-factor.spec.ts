// Two-factor sign-in as an admin meets it: set up an authenticator on "Your account" (the code
// is computed here, as an authenticator app would), sign out, sign in with password and code;
// then a superadmin sees it on /admins and resets it for a lost phone.
import * as crypto from 'node:crypto';
import { test, expect, opener, hydrated, signIn, asSuperadmin, PASSWORD } from './fixtures';

const EMAIL = 'totp-admin@nest.test';

/** RFC 4648 base32 (no padding) to bytes. */
function base32(text: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 (HMAC-SHA-1, 6 digits, 30 s) at `at` milliseconds. */
function totp(secret: string, at: number = Date.now()): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const n = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

test('an admin sets up an authenticator, then signs in with password and code', async ({ page, browser }) => {
  // The superadmin adds the admin with a typed password.
  await asSuperadmin(page);
  await page.goto('/admins');
  await hydrated(page);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Type an initial password').check();
  await page.getByRole('textbox', { name: 'Initial password' }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Add admin' }).click();
  await expect(page.getByText(`${EMAIL} was added as admin.`)).toBeVisible();

  const context = await browser.newContext();
  await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  const admin = await context.newPage();
  await admin.goto('/login');
  await signIn(admin, EMAIL, PASSWORD);
  await expect(admin.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();

  // Set up: QR code and secret, a wrong code first, then the right one.
  await admin.getByRole('link', { name: 'Your account' }).click();
  await expect(admin.getByRole('heading', { level: 1, name: 'Your account' })).toBeVisible();
  await expect(admin.getByTestId('two-factor-state')).toContainText('Off.');
  await hydrated(admin);
  await admin.getByRole('button', { name: 'Set up an authenticator' }).click();
  await expect(admin.getByRole('img', { name: 'QR code for your authenticator app' })).toBeVisible();
  const secret = (await admin.getByTestId('totp-secret').textContent())!.trim();
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);
  await admin.getByLabel('Code from your authenticator').fill('000000');
  await admin.getByRole('button', { name: 'Confirm and turn on' }).click();
  await expect(admin.locator('#field-code-error')).toContainText('does not match');
  await admin.getByLabel('Code from your authenticator').fill(totp(secret));
  await admin.getByRole('button', { name: 'Confirm and turn on' }).click();
  await expect(admin.getByTestId('recovery-codes').locator('li')).toHaveCount(10);
  await admin.getByRole('link', { name: 'I have saved my recovery codes' }).click();
  await expect(admin.getByTestId('two-factor-state')).toContainText('On since');
  await expect(admin.getByTestId('two-factor-state')).toContainText('10 of 10 recovery codes left');

  // Sign out, sign in: the password leads to the code.
  await admin.getByRole('button', { name: 'Sign out' }).click();
  await expect(admin).toHaveURL(/\/login$/);
  await signIn(admin, EMAIL, PASSWORD);
  await expect(admin).toHaveURL(/\/login\/code\?redirect=%2F$/);
  await expect(admin.getByRole('heading', { name: 'Two-factor sign-in' })).toBeVisible();
  await hydrated(admin);
  await admin.getByLabel('Authentication code').fill('000000');
  await admin.getByRole('button', { name: 'Verify and sign in' }).click();
  await expect(admin.locator('#field-code-error')).toContainText('not valid');
  // The confirming code's step is used up; the next step's code is within the ±1 window.
  await admin.getByLabel('Authentication code').fill(totp(secret, Date.now() + 30_000));
  await admin.getByRole('button', { name: 'Verify and sign in' }).click();
  await expect(admin.getByRole('heading', { level: 1, name: 'Overview' })).toBeVisible();
  await expect(admin.getByTestId('signed-in-as')).toContainText(`${EMAIL} · admin`);

  // The superadmin sees it, and resets it (a lost phone): the admin is signed out.
  await page.goto('/admins');
  await hydrated(page);
  const row = page.getByRole('row', { name: new RegExp(EMAIL) });
  await expect(row.getByRole('cell', { name: /^on/ })).toBeVisible();
  await opener(row, 'Reset').click();
  await row.getByRole('button', { name: 'Yes, reset' }).click();
  await expect(page.getByText(`${EMAIL}'s two-factor sign-in was reset`)).toBeVisible();
  await admin.goto('/account');
  await expect(admin).toHaveURL(/\/login\?redirect=%2Faccount$/);
  await context.close();
});
