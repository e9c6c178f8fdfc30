// Organizations as an admin uses them: create one and watch the job engine take it to `active`
// on the simulated cloud, find it in a long filtered list, and delete it with a typed
// confirmation.
import { test, expect, opener, hydrated, asSuperadmin } from './fixtures';

test.describe.configure({ mode: 'serial' });

test('an admin creates an organization and it is provisioned to active', async ({ page }) => {
  await asSuperadmin(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organizations' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Organizations' })).toBeVisible();
  await page.getByRole('link', { name: 'New organization' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'New organization' })).toBeVisible();
  await hydrated(page);

  await page.getByLabel('Organization name').fill('Acme Inc.');
  await page.getByLabel('Slug').fill('Acme');
  await expect(page.getByTestId('slug-check')).toContainText('lowercase');
  await page.getByLabel('Slug').fill('acme');
  await expect(page.getByTestId('slug-check')).toHaveText('Available');
  await page.getByLabel('Owner email').fill('owner@acme.test');
  await page.getByLabel('Tier').selectOption({ label: 'Growth — cx32 — €60.00/month' });
  await page.getByLabel('Region').selectOption('hel1');
  await page.getByRole('button', { name: 'Create organization' }).click();

  await expect(page.getByRole('heading', { level: 1, name: 'Acme Inc.' })).toBeVisible();
  await expect(page.getByTestId('org-status')).toHaveText(/pending|provisioning|deploying|active/);
  await expect(page.getByTestId('org-tier')).toHaveText('Growth');
  const jobs = page.getByTestId('jobs');
  await expect(jobs.getByRole('row', { name: /create/ })).toContainText(/queued|running|succeeded/);
  // The engine runs the create job at once against the simulated cloud.
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 1_000 });
  }).toPass({ timeout: 90_000 });
  await expect(jobs.getByRole('row', { name: /create/ })).toContainText('succeeded');
  // What it costs at Hetzner (cx32 and its IPv4 in Helsinki) against what it pays.
  await expect(page.getByTestId('org-cost-total')).toHaveText('€7.30', { timeout: 30_000 });
  await expect(page.getByTestId('org-margin')).toHaveText('€52.70 (87.8 %)');

  // The same slug again is refused next to the field.
  await page.goto('/organizations/new');
  await hydrated(page);
  await page.getByLabel('Slug').fill('acme');
  await expect(page.getByTestId('slug-check')).toHaveText('Already taken');
});

test('filters, search and pagination over a long list', async ({ page }) => {
  await asSuperadmin(page);
  const tiers = await (await page.request.post('/api/list_tiers', { form: {} })).json();
  const starter = tiers.find((t: { code: string }) => t.code === 'starter').id;
  for (let i = 0; i < 62; i++) {
    const response = await page.request.post('/api/create_organization', {
      form: {
        name: `Bulk ${String(i).padStart(2, '0')}`,
        slug: `bulk-${i}`,
        owner_email: `owner${i}@bulk.test`,
        tier_id: String(starter),
        region: i % 2 === 0 ? 'fsn1' : 'sin',
      },
    });
    expect(response.status()).toBe(200);
  }
  await page.goto('/organizations');
  await hydrated(page);
  const rows = page.getByRole('table').getByRole('row');
  await expect(rows).toHaveCount(26); // header + 25
  // Each page's first row differs: wait for it, so the next click is on the new page's link.
  const firstOfPage1 = await rows.nth(1).textContent();
  await page.getByRole('link', { name: 'Next page' }).click();
  await expect(page).toHaveURL(/after=/);
  await expect(rows.nth(1)).not.toHaveText(firstOfPage1 ?? '');
  await expect(rows).toHaveCount(26);
  const firstOfPage2 = await rows.nth(1).textContent();
  await page.getByRole('link', { name: 'Next page' }).click();
  await expect(rows.nth(1)).not.toHaveText(firstOfPage2 ?? '');
  await expect(rows).toHaveCount(14); // 63 organizations: 25 + 25 + 13
  await expect(page.getByRole('link', { name: 'Next page' })).toHaveCount(0);

  await page.goto('/organizations');
  await hydrated(page);
  await page.getByLabel('Region').selectOption('sin');
  await page.getByLabel('Sort by').selectOption('name');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page).toHaveURL(/region=sin/);
  await expect(rows.nth(1)).toContainText('Bulk 01');
  await page.reload();
  await expect(rows.nth(1)).toContainText('Bulk 01'); // the view survives a reload

  await page.goto('/organizations?q=owner42%40bulk');
  await expect(rows).toHaveCount(2);
  await expect(rows.nth(1)).toContainText('bulk-42');
  await page.goto('/organizations?status=suspended');
  await expect(page.getByText('No organization matches these filters.')).toBeVisible();
});

test('deleting asks for the slug to be typed', async ({ page }) => {
  await asSuperadmin(page);
  await page.goto('/organizations?q=acme');
  await page.getByRole('link', { name: 'Acme Inc.' }).click();
  await hydrated(page);
  await opener(page, 'Delete').click();
  const confirm = page.getByRole('button', { name: 'Confirm: Delete' });
  await expect(confirm).toBeDisabled();
  await page.getByLabel('Type acme to confirm').fill('acm');
  await expect(confirm).toBeDisabled();
  await page.getByLabel('Type acme to confirm').fill('acme');
  await confirm.click();
  await expect(page.getByTestId('org-status')).toHaveText(/deleting|deleted/);
  await expect(page.getByText('organization.delete_requested')).toBeVisible();
  await expect(async () => {
    await page.reload();
    await expect(page.getByTestId('org-status')).toHaveText('deleted', { timeout: 1_000 });
  }).toPass({ timeout: 90_000 });
  await expect(page.getByTestId('jobs').getByRole('row', { name: /delete/ })).toContainText('succeeded');
});

test('the overview shows revenue, the pending queue and alerts; the waitlist has its empty state', async ({ page }) => {
  await asSuperadmin(page);
  await expect(page.getByRole('heading', { name: 'Revenue' })).toBeVisible();
  await expect(page.getByTestId('mrr')).toHaveText(/^€\d[\d,]*\.\d\d$/);
  await expect(page.getByRole('heading', { name: 'Pending approval' })).toBeVisible();
  await expect(page.getByRole('heading', { name: 'Health alerts' })).toBeVisible();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Waitlist' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Waitlist' })).toBeVisible();
  await expect(page.getByText('No signups are waiting for approval.')).toBeVisible();
});
