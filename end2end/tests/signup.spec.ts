// Self-service signup in simulator mode: the public form, the clearly labelled stand-in payment
// form, /pending following the provisioning live, and the redirect to the instance; a declined
// card is said so beside the card, and paying again from /pending provisions.
import { test, expect, asSuperadmin, hydrated } from './fixtures';
import type { Page } from '@playwright/test';

test.describe.configure({ mode: 'serial' });
// Provisioning takes a few seconds per server, behind the earlier specs' queue.
test.setTimeout(150_000);

/** The public page hydrates without the dashboard frame's sidebar. */
async function hydratedPublic(page: Page) {
  await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true');
}

async function fillSignup(page: Page, name: string, slug: string) {
  await page.goto('/signup');
  await hydratedPublic(page);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Get your own Nest instance');
  await page.getByLabel(/^Growth/).check();
  await page.getByLabel('Organization name').fill(name);
  await page.getByLabel('Slug').fill(slug);
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.getByLabel('Owner email').fill(`owner@${slug}.test`);
  await page.getByRole('button', { name: 'Continue to payment' }).click();
  await expect(page.getByText('Simulated Stripe — no real card is charged')).toBeVisible();
}

test('the sign-up page is a storefront: the brand, the address as it is typed, plan cards, Nuremberg first; usable at 375 px by keyboard alone', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await page.goto('/signup');
  await hydratedPublic(page);
  await expect(page.locator('.topbar')).toHaveText('Nest');
  await expect(page.getByText('control plane')).toHaveCount(0);
  await expect(page.getByLabel('Region')).toHaveValue('nbg1');
  // Each plan is a card holding its radio, one per row at this width.
  const cards = page.locator('label.tier-card');
  await expect(cards).toHaveCount(3);
  await expect(cards.nth(0).locator('input[type="radio"]')).toHaveCount(1);
  const [first, second] = [await cards.nth(0).boundingBox(), await cards.nth(1).boundingBox()];
  expect(second!.y).toBeGreaterThan(first!.y + first!.height - 1);
  // Nothing is wider than the screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

  // The keyboard alone: the plans are one radio group (arrows move), then the fields in order.
  await cards.nth(0).locator('input').focus();
  await page.keyboard.press('ArrowDown');
  await expect(cards.nth(1).locator('input')).toBeChecked();
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Region')).toBeFocused();
  await page.keyboard.press('Tab');
  await page.keyboard.type('Phone Co');
  await page.keyboard.press('Tab');
  await page.keyboard.type('phone-co');
  await expect(page.getByTestId('slug-address')).toHaveText('phone-co.localhost');
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.keyboard.press('Tab');
  await page.keyboard.type('owner@phone-co.test');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Continue to payment' })).toBeFocused();
  await expect(page.getByLabel('Owner email')).toHaveValue('owner@phone-co.test');
});

test('a customer signs up, pays with a test card and is sent to the instance once it is up', async ({ page }) => {
  await fillSignup(page, 'Signup Co', 'signup-co');
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay and start my instance' }).click();
  await page.waitForURL(/\/pending\?token=[0-9a-f]{64}$/);
  await hydratedPublic(page);
  await expect(page.getByTestId('pending-payment')).toHaveText('paid', { timeout: 20_000 });
  // The provisioning steps show up and move on without a reload.
  await expect(page.getByRole('heading', { name: 'Setting up' })).toBeVisible({ timeout: 60_000 });
  const redirect = page.waitForRequest(/^http:\/\/signup-co\.localhost\/?$/, { timeout: 90_000 });
  await expect(page.getByTestId('pending-headline')).toHaveText('Your instance is ready.', { timeout: 90_000 });
  await expect(page.getByTestId('instance-link')).toHaveAttribute('href', 'http://signup-co.localhost');
  await redirect;
});

test('a declined card is said so, and paying again from /pending provisions', async ({ page }) => {
  await fillSignup(page, 'Declined Co', 'declined-co');
  await page.getByLabel('Card number').fill('4000 0000 0000 0002');
  await page.getByRole('button', { name: 'Pay and start my instance' }).click();
  await expect(page.locator('#field-card-error')).toContainText('declined');
  await page.getByRole('link', { name: 'Follow my signup' }).click();
  await page.waitForURL(/\/pending\?token=/);
  await hydratedPublic(page);
  await expect(page.getByTestId('pending-headline')).toHaveText('Your payment was declined.');
  await expect(page.getByTestId('payment-error')).toContainText('declined');
  // Loaded anew (hydrated, not navigated to), the form is there; what is typed in it survives
  // the page's refreshes every two seconds.
  await page.reload();
  await hydratedPublic(page);
  await page.getByLabel('Card number').fill('4242 4242');
  await page.waitForTimeout(4_500);
  await expect(page.getByLabel('Card number')).toHaveValue('4242 4242');
  await expect(page.getByLabel('Card number')).toBeFocused();
  await page.getByLabel('Card number').fill('4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay and start my instance' }).click();
  await expect(page.getByTestId('pending-payment')).toHaveText('paid', { timeout: 20_000 });
  await expect(page.getByTestId('pending-headline')).toHaveText('Your instance is ready.', { timeout: 90_000 });
});

test('a /pending link with an unknown token reveals nothing', async ({ page }) => {
  await page.goto(`/pending?token=${'0'.repeat(64)}`);
  await hydratedPublic(page);
  await expect(page.getByRole('alert')).toHaveText('This link is not valid, or the signup expired.');
});

test('/billing shows the paid Stripe invoice of the signup', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/billing?q=signup-co');
  await hydrated(page);
  const row = page.locator('[data-testid="invoices"] tbody tr');
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-status', 'paid');
  await expect(row).toContainText('Signup Co');
  await expect(row).toContainText('€60.00');
  await expect(page.getByTestId('billing-revenue')).toContainText('€');
});

// Runs after the organization list's specs, whose counts it would change.
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
