// The invoice ledger as an admin sees it: an organization created on the simulated cloud is
// billed by the invoice run (`nest billing run-invoices`, the daily task run by hand), `/billing`
// shows its MRR and open invoice, and marking the invoice paid with a reason (behind a
// confirmation) moves the totals. Named to run after the organization and queue specs, whose
// organizations it also bills.
import { test, expect, opener, asSuperadmin, createOrganization, hydrated, nest } from './fixtures';

test('an admin sees the invoice run on /billing and marks a manual invoice paid', async ({ page }) => {
  test.setTimeout(120_000);
  await asSuperadmin(page);
  await createOrganization(page, 'Ledger Co', 'ledger-co');
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 60_000 });

  const out = nest(['billing', 'run-invoices']);
  expect(out).toMatch(/invoice run for \d{4}-\d\d: \d+ invoices created/);
  // Twice changes nothing.
  expect(nest(['billing', 'run-invoices'])).toContain(': 0 invoices created');

  await page.goto('/billing?q=ledger-co');
  await hydrated(page);
  await expect(page.getByRole('heading', { level: 1, name: 'Billing' })).toBeVisible();
  await expect(page.getByTestId('billing-mrr')).toHaveText(/€\d[\d,]*\.\d\d/);
  // Cost against revenue: the active Ledger Co counts in its tier's and its region's rows.
  await expect(page.getByRole('heading', { name: 'Cost against revenue' })).toBeVisible();
  await expect(page.getByTestId('margins-by-tier')).toContainText(' %');
  await expect(page.getByTestId('least-profitable')).toBeVisible();
  const row = page.locator('[data-testid="invoices"] tbody tr');
  await expect(row).toHaveCount(1);
  await expect(row).toHaveAttribute('data-status', 'open');
  await expect(row).toContainText(/INV-\d{6}-\d{4}/);
  await expect(row).toContainText('Ledger Co');
  const revenueBefore = await page.getByTestId('billing-revenue').textContent();
  const openBefore = await page.getByTestId('billing-open').textContent();

  await opener(row, 'Mark paid').click();
  const confirm = page.getByRole('form', { name: /Confirm: Mark paid/ });
  await expect(confirm.getByRole('button', { name: 'Confirm: Mark paid' })).toBeDisabled();
  await confirm.getByLabel('Reason (kept in the audit log)').fill('paid by bank transfer');
  await confirm.getByRole('button', { name: 'Confirm: Mark paid' }).click();
  await expect(row).toHaveAttribute('data-status', 'paid');
  await expect(page.getByTestId('billing-revenue')).not.toHaveText(revenueBefore ?? '');
  await expect(page.getByTestId('billing-open')).not.toHaveText(openBefore ?? '');

  // The printable invoice and the organization's billing section.
  await row.getByRole('link', { name: /INV-/ }).click();
  await expect(page.getByTestId('invoice-status')).toHaveText('paid');
  await expect(page.getByTestId('invoice-sheet')).toContainText('Ledger Co');
  await expect(page.getByText('paid by bank transfer')).toBeVisible();
  await page.getByRole('link', { name: 'Organization page' }).click();
  await expect(page.getByTestId('org-invoices')).toContainText('paid');
  await expect(page.getByText('invoice.paid')).toBeVisible();

  // The overview's revenue card links to /billing.
  await page.goto('/');
  await hydrated(page);
  await expect(page.getByTestId('mrr')).toHaveText(/€\d[\d,]*\.\d\d/);
  await page.getByRole('link', { name: 'Revenue' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Billing' })).toBeVisible();
});
