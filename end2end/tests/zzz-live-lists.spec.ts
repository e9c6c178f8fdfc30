// Runs last (zzz-): it adds organizations and admins that earlier specs would count.
// /tiers, /admins, /waitlist and /audit follow what another admin does, without a reload, like
// the other pages.
import { test, expect, hydrated, asSuperadmin, nest, opener } from './fixtures';

test.setTimeout(60_000);

test("another admin's changes show on /tiers, /admins, /waitlist and /audit without a reload", async ({ browser }) => {
  const mine = await browser.newContext();
  const theirs = await browser.newContext();
  for (const context of [mine, theirs]) {
    await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
  }
  const watcher = await mine.newPage();
  const other = await theirs.newPage();
  await asSuperadmin(watcher);
  await asSuperadmin(other);

  // Tiers: a new one appears, then goes.
  await watcher.goto('/tiers');
  await hydrated(watcher);
  await other.goto('/tiers?new');
  await hydrated(other);
  await other.getByLabel('Name').fill('Live Tier');
  await other.getByLabel('Code').fill('live-tier');
  await other.getByLabel('Hetzner server type').fill('cx22');
  await other.getByLabel('vCPUs').fill('2');
  await other.getByLabel('Memory (GB)').fill('4');
  await other.getByLabel('Disk (GB)').fill('40');
  await other.getByLabel('Monthly price').fill('19.00');
  await other.getByRole('button', { name: 'Save tier' }).click();
  await expect(watcher.getByTestId('tiers').getByRole('row', { name: /Live Tier/ })).toBeVisible();
  const row = other.getByTestId('tiers').getByRole('row', { name: /Live Tier/ });
  await opener(row, 'Delete').click();
  await row.getByRole('button', { name: 'Yes, delete Live Tier' }).click();
  await expect(watcher.getByTestId('tiers').getByRole('row', { name: /Live Tier/ })).toHaveCount(0);

  // The audit log shows both, newest first.
  await watcher.goto('/audit');
  await hydrated(watcher);
  await other.goto('/tiers');
  await hydrated(other);
  await other.getByRole('button', { name: 'Deactivate Enterprise' }).click();
  await expect(watcher.getByRole('row', { name: /tier\.deactivated/ }).first()).toBeVisible();
  await other.getByRole('button', { name: 'Activate Enterprise' }).click();

  // Admins: one added elsewhere appears.
  await watcher.goto('/admins');
  await hydrated(watcher);
  await other.goto('/admins');
  await hydrated(other);
  await other.getByLabel('Email', { exact: true }).fill('live@nest.test');
  await other.getByRole('button', { name: 'Add admin' }).click();
  await expect(watcher.getByRole('row', { name: /live@nest\.test/ })).toBeVisible();

  // The waitlist: a signup approved elsewhere leaves it.
  nest(['add-signup', '--name', 'Live Wait', '--slug', 'live-wait', '--email', 'owner@live-wait.test']);
  await watcher.goto('/waitlist');
  await hydrated(watcher);
  await expect(watcher.getByRole('row', { name: /Live Wait/ })).toBeVisible();
  await other.goto('/waitlist');
  await hydrated(other);
  await other.getByLabel('Tier for Live Wait').selectOption({ label: 'Starter' });
  await other.getByRole('button', { name: 'Approve Live Wait' }).click();
  await expect(watcher.getByRole('row', { name: /Live Wait/ })).toHaveCount(0);
  await mine.close();
  await theirs.close();
});
