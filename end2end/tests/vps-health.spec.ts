// Health monitoring as an admin watches it (sweeps every 5 s in this run): a simulated service
// fails, the organization's health goes red live, an incident appears on the overview, an admin
// acknowledges it, the server is rebooted automatically, and once it answers again the incident
// closes as recovered. (Named to run after the specs that count organizations.)
import { test, expect, opener, hydrated, asSuperadmin, createOrganization, engineIdle } from './fixtures';

test.describe.configure({ mode: 'serial' });
test.setTimeout(180_000);

const SIM = `http://127.0.0.1:${process.env.NEST_E2E_SIM_PORT ?? 3199}/_sim`;
const SIM_HEADERS = { 'x-sim-token': process.env.NEST_E2E_SIM_TOKEN ?? '' };

test('a failing service turns red live, opens an incident, is rebooted, and recovers', async ({ page }) => {
  await asSuperadmin(page);
  await engineIdle(page);
  await createOrganization(page, 'Health Co', 'health-co');
  await expect(page.getByTestId('org-status')).toHaveText('active', { timeout: 60_000 });
  const orgId = Number(new URL(page.url()).pathname.split('/').pop());
  const detail = await (await page.request.post('/api/get_organization', { form: { id: String(orgId) } })).json();
  const serverId: number = detail.vps.hetzner_server_id;
  const vpsId: number = detail.vps.id;

  // The list shows it healthy once a sweep has checked it.
  await page.goto('/organizations?q=health-co');
  await hydrated(page);
  const row = page.getByRole('row', { name: /Health Co/ });
  await expect(row.getByText('healthy', { exact: true })).toBeVisible({ timeout: 30_000 });

  // Its web service fails: degraded, without a reload.
  const fail = await page.request.post(`${SIM}/servers/${serverId}/services/web`, {
    headers: SIM_HEADERS,
    data: { failing: true },
  });
  expect(fail.status()).toBe(204);
  await expect(row.getByText('degraded', { exact: true })).toBeVisible({ timeout: 30_000 });

  // After three failed sweeps, an incident on the overview (live, in another tab).
  const overview = await page.context().newPage();
  await overview.goto('/');
  await hydrated(overview);
  const card = overview.getByTestId('open-incidents');
  await expect(card.getByRole('link', { name: 'Health Co' })).toBeVisible({ timeout: 45_000 });

  // An admin acknowledges it, with a reason.
  await page.goto('/alerts?state=open');
  await hydrated(page);
  const incident = page.locator('[data-testid^="incident-"]', { hasText: 'Health Co' });
  await expect(incident.getByText('unhealthy', { exact: true })).toBeVisible();
  await opener(incident, 'Acknowledge').click();
  await incident.getByRole('textbox', { name: 'Reason' }).fill('Looking at the web container');
  await incident.getByRole('button', { name: 'Acknowledge incident' }).click();
  await expect(incident.getByTestId('acknowledged')).toContainText('Acknowledged by root@nest.test');
  await expect(incident.getByTestId('acknowledged')).toContainText('Looking at the web container');

  // Three more failed sweeps: an automatic reboot.
  await expect(incident.getByText('auto_reboot', { exact: true })).toBeVisible({ timeout: 60_000 });
  // The reboot brought it back (the fault is cleared, as a restarted container would be).
  const clear = await page.request.post(`${SIM}/servers/${serverId}/services/web`, {
    headers: SIM_HEADERS,
    data: { failing: false },
  });
  expect(clear.status()).toBe(204);
  await page.goto('/alerts?state=closed');
  await hydrated(page);
  const closed = page.locator('[data-testid^="incident-"]', { hasText: 'Health Co' });
  await expect(closed.getByText('closed (recovered)')).toBeVisible({ timeout: 45_000 });
  await expect(closed.getByText('recovered', { exact: true })).toBeVisible();
  await expect(card.getByRole('link', { name: 'Health Co' })).toHaveCount(0, { timeout: 15_000 });

  // The server's page: uptime, a chart per service, its reboot; the org's history has the alerts.
  await page.goto(`/vpses/${vpsId}`);
  await hydrated(page);
  await expect(page.getByTestId('server-health')).toContainText('healthy');
  await expect(page.getByTestId('uptime')).toContainText('24 h');
  await expect(page.getByRole('img', { name: /^Web response time over the last 24 hours/ })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Automatic reboots' }).getByRole('row')).toHaveCount(2);
  await page.goto(`/organizations/${orgId}`);
  await expect(page.getByRole('region', { name: 'History' })).toContainText('health.auto_reboot');
  await expect(page.getByRole('region', { name: 'History' })).toContainText('health.recovered');
  await overview.close();
});
