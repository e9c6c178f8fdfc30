// Pricing tiers: a superadmin edits a tier's price, with a clear error for a malformed amount.
import { test, expect, hydrated, asSuperadmin } from './fixtures';

test('a superadmin edits a tier and sees the new price', async ({ page }) => {
  await asSuperadmin(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Tiers' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Pricing tiers' })).toBeVisible();
  await hydrated(page);
  const row = page.getByRole('row', { name: /Enterprise/ });
  await expect(row).toContainText('€120.00');
  await expect(row).toContainText('8 vCPU, 16 GB RAM, 160 GB disk');

  await row.getByRole('button', { name: 'Edit Enterprise' }).click();
  await expect(page.getByRole('heading', { name: 'Edit tier' })).toBeVisible();
  await page.getByLabel('Monthly price').fill('12.345');
  await page.getByRole('button', { name: 'Save tier' }).click();
  await expect(page.locator('#field-monthly_price-error')).toHaveText('has more than two decimals');

  await page.getByLabel('Monthly price').fill('125.50');
  await page.getByRole('button', { name: 'Save tier' }).click();
  await expect(page.getByRole('heading', { name: 'Edit tier' })).toHaveCount(0);
  await expect(page.getByRole('row', { name: /Enterprise/ })).toContainText('€125.50');

  // A tier in use cannot be deleted: its button says why.
  const starter = page.getByRole('row', { name: /Starter/ });
  await expect(starter.getByRole('button', { name: 'Delete' })).toBeDisabled();
});
