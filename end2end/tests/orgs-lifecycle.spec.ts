// The lifecycle actions on a live organization and on signups: suspend and resume (routing off
// and on), change tier (a resize job runs: power off, change type, power on), and the waitlist's
// approve (on another tier) and reject (with a reason shown on the organization).
import { test, expect, opener, hydrated, asSuperadmin, nest } from './fixtures';
import type { Page } from '@playwright/test';

test.describe.configure({ mode: 'serial' });
test.setTimeout(120_000);

async function act(page: Page, label: string) {
  await opener(page, label).click();
  await page.getByRole('button', { name: `Confirm: ${label}` }).click();
}

test('suspend and resume switch routing; a tier change resizes the server', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/organizations/new');
  await hydrated(page);
  await page.getByLabel('Organization name').fill('Cycle Co');
  await page.getByLabel('Slug').fill('cycle-co');
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.getByLabel('Owner email').fill('owner@cycle.test');
  await page.getByRole('button', { name: 'Create organization' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Cycle Co' })).toBeVisible();
  await hydrated(page);
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 90_000 });
  await expect(page.getByText(/cycle-co\.localhost → .* \(enabled\)/)).toBeVisible();

  await act(page, 'Suspend');
  await expect(page.getByTestId('org-status')).toHaveText('suspended');
  await expect(page.getByText(/cycle-co\.localhost → .* \(disabled\)/)).toBeVisible();
  await expect(opener(page, 'Suspend')).toHaveCount(0);

  await act(page, 'Resume');
  await expect(page.getByTestId('org-status')).toHaveText('active');
  await expect(page.getByText(/cycle-co\.localhost → .* \(enabled\)/)).toBeVisible();

  await opener(page, 'Change tier').click();
  await page.getByLabel('New tier').selectOption({ label: 'Growth (cx32)' });
  await page.getByRole('button', { name: 'Confirm: Change tier' }).click();
  await expect(page.getByTestId('org-tier')).toHaveText('Growth');
  const resize = page.getByTestId('jobs').getByRole('row', { name: /resize/ });
  await expect(resize).toBeVisible();
  await expect(resize).toContainText('succeeded', { timeout: 60_000 });
  await expect(resize).toContainText('Change the server type');
  await expect(page.locator('dt:text-is("Type") + dd')).toHaveText('cx32');

  // Redeploy goes through the server's self-update endpoint, authenticated with its secret.
  await act(page, 'Redeploy');
  const redeploy = page.getByTestId('jobs').getByRole('row', { name: /redeploy/ });
  await expect(redeploy).toContainText('succeeded', { timeout: 60_000 });
  await expect(redeploy).toContainText('Call the self-update endpoint');
  await expect(page.getByTestId('org-status')).toHaveText('active');
});

test('the waitlist approves a signup on another tier and rejects one with a reason', async ({ page }) => {
  nest(['add-signup', '--name', 'Wait One', '--slug', 'wait-one', '--email', 'one@wait.test']);
  nest(['add-signup', '--name', 'Wait Two', '--slug', 'wait-two', '--email', 'two@wait.test', '--region', 'hel1']);
  await asSuperadmin(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Waitlist' }).click();
  await hydrated(page);
  await expect(page.getByRole('row', { name: /Wait One/ })).toBeVisible();
  await expect(page.getByRole('row', { name: /Wait Two/ })).toBeVisible();

  await page.getByLabel('Tier for Wait One').selectOption({ label: 'Enterprise' });
  await page.getByRole('button', { name: 'Approve Wait One' }).click();
  await expect(page.getByRole('row', { name: /Wait One/ })).toHaveCount(0);

  await page.getByRole('checkbox', { name: 'Select Wait Two' }).check();
  await opener(page, 'Reject selected').click();
  await page.getByLabel('Reason (optional)').fill('Duplicate of an existing customer');
  await page.getByRole('button', { name: 'Yes, reject' }).click();
  await expect(page.getByText('No signups are waiting for approval.')).toBeVisible();

  await page.goto('/organizations?q=wait-two');
  await page.getByRole('link', { name: 'Wait Two' }).click();
  await expect(page.getByTestId('org-status')).toHaveText('cancelled');
  await expect(page.getByTestId('status-reason')).toContainText('Duplicate of an existing customer');

  await page.goto('/organizations?q=wait-one');
  await page.getByRole('link', { name: 'Wait One' }).click();
  await expect(page.getByTestId('org-tier')).toHaveText('Enterprise');
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 90_000 });
});
