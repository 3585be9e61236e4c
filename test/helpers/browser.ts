/**
 * A real browser for the browser tests (test/browser/): the system's Chromium (Debian's `chromium`
 * package, found the way scripts/ensure-browser.mjs finds it, which `npm test` runs first) driven by
 * playwright-core. Nothing is downloaded: playwright-core ships no browser, and this helper never
 * asks it to fetch one.
 *
 * Every step a test takes can be photographed with {@link screenshot}: PNGs land under
 * `test-artifacts/screenshots/<test>/<NN-step>.png` (gitignored), which CI keeps as artifacts.
 */
import { mkdir, rm } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from './processes.js';
import { isExecutableFile } from '../../src/temporal/cli.js';

/** Where the screenshots of every browser test go (one folder per test). CI uploads this folder. */
export const SCREENSHOT_ROOT = join(REPO_ROOT, 'test-artifacts', 'screenshots');

const FALLBACK_CHROMIUM = '/usr/bin/chromium';

/**
 * The Chromium binary: `TOOLGATE_CHROMIUM_PATH`, else `chromium`/`chromium-browser` on PATH, else
 * /usr/bin/chromium. Throws with the way to get one when there is none: a browser test must fail,
 * never skip, on a machine without a browser.
 */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TOOLGATE_CHROMIUM_PATH;
  if (fromEnv) {
    const path = resolve(fromEnv);
    if (!isExecutableFile(path)) throw new Error(`TOOLGATE_CHROMIUM_PATH is set to ${fromEnv}, but no executable file is there`);
    return path;
  }
  for (const name of ['chromium', 'chromium-browser']) {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (dir && isExecutableFile(join(dir, name))) return join(dir, name);
    }
  }
  if (isExecutableFile(FALLBACK_CHROMIUM)) return FALLBACK_CHROMIUM;
  throw new Error("no Chromium found: run `node scripts/ensure-browser.mjs` (installs Debian's chromium as root) or set TOOLGATE_CHROMIUM_PATH");
}

/** Launches the system Chromium headless. Close it in the test's `after`. */
export async function launchBrowser(): Promise<Browser> {
  const args = [
    // Chromium's sandbox refuses to start as root (CI runs as root), and containers often lack the
    // user namespaces it needs; the pages these tests open are local ones the test serves itself.
    '--no-sandbox',
    // Docker's small /dev/shm makes renderers crash on larger pages.
    '--disable-dev-shm-usage',
    '--disable-gpu',
  ];
  return chromium.launch({ executablePath: findChromium(), headless: true, args, timeout: 30_000 });
}

/** File-name-safe form of a test or step name. */
function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 80);
}

const stepCounters = new Map<string, number>();

/**
 * Writes a full-page PNG of `page` to `test-artifacts/screenshots/<test>/<NN-step>.png`, NN counting
 * the steps of that test from 01 (the folder is emptied at step 01 of each run); returns the file's
 * path. Failing to photograph never fails the test by itself (the failure being photographed
 * matters more): a description of the error is returned in the path's place.
 */
export async function screenshot(page: Page, testName: string, step: string): Promise<string> {
  const dir = join(SCREENSHOT_ROOT, slug(testName));
  const n = (stepCounters.get(dir) ?? 0) + 1;
  stepCounters.set(dir, n);
  const file = join(dir, `${String(n).padStart(2, '0')}-${slug(step)}.png`);
  try {
    // The first step of a test in this run clears its folder: the folder shows one run, not a mix of runs.
    if (n === 1) await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await page.screenshot({ path: file, fullPage: true, timeout: 15_000 });
    return file;
  } catch (err) {
    return `(no screenshot ${file}: ${(err as Error).message})`;
  }
}

/** Browser-side expression for the page's visible text (a string: the tests compile without DOM types). */
const BODY_TEXT = "document.body ? document.body.innerText : ''";

/** The visible text of the page, shortened for a failure message. */
export async function pageText(page: Page, maxChars = 4000): Promise<string> {
  try {
    const text = await page.evaluate<string>(BODY_TEXT);
    return text.length > maxChars ? `${text.slice(0, maxChars)}\n… (${text.length - maxChars} more characters)` : text;
  } catch (err) {
    return `(page text unavailable: ${(err as Error).message})`;
  }
}

/**
 * Waits until `check(text)` holds for the page's visible text (polling, as a SPA renders in
 * steps); on timeout takes a screenshot and fails with `what`, the page's URL and its text, so a
 * failure says what the browser showed instead.
 */
export async function expectPageText(
  page: Page,
  what: string,
  check: (text: string) => boolean,
  options: { timeoutMs?: number; testName?: string } = {},
): Promise<string> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let text = '';
  for (;;) {
    text = await page.evaluate<string>(BODY_TEXT).catch(() => '');
    if (check(text)) return text;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const shot = options.testName ? await screenshot(page, options.testName, `failed ${what}`) : '(no screenshot)';
  throw new Error(`expected the page to show ${what}, but it did not.\nurl: ${page.url()}\nscreenshot: ${shot}\npage text:\n${await pageText(page)}`);
}
