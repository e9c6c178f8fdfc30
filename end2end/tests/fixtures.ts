// Shared test setup: every page blocks non-loopback requests, so a test can never reach the
// internet, and helpers wait for hydration before interacting.
import { test as base, expect, type Page } from '@playwright/test';

export const test = base.extend({
  context: async ({ context }, use) => {
    await context.route(/^(?!https?:\/\/(127\.0\.0\.1|localhost|\[::1\])[:/]).*/, (route) => route.abort());
    await use(context);
  },
});

/** Waits until the WASM bundle has hydrated the page (the layout flips `data-hydrated`). */
export async function hydrated(page: Page) {
  await expect(page.locator('.shell')).toHaveAttribute('data-hydrated', 'true');
}

export { expect };
