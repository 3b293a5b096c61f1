#!/usr/bin/env node
// Opens DOCS_URL (a service's /docs page) in headless Chromium and checks that Swagger UI
// rendered the operations named in EXPECT (a JSON array of "METHOD /path"), with no request
// leaving the page's own origin and no content-security-policy violation. Prints one JSON line
// ({"operations": [...]}) and exits 0 when every expected operation is on the page; otherwise
// prints why on stderr and exits 1. Run by tests/e2e/api_docs.rs; `npm ci` here installs
// playwright-core, and CHROMIUM (default /usr/bin/chromium, Debian's) is the browser: no
// browser is ever downloaded.

const { chromium } = require('playwright-core');

const DOCS_URL = process.env.DOCS_URL;
const EXPECT = JSON.parse(process.env.EXPECT || '[]');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function main() {
  const origin = new URL(DOCS_URL).origin;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  const problems = [];
  try {
    const page = await browser.newPage();
    // Everything the page loads must come from the service itself (no CDN).
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith(origin) && !url.startsWith('data:')) {
        problems.push(`request outside the service: ${url}`);
      }
    });
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) {
        problems.push(`CSP violation: ${message.text()}`);
      }
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    const response = await page.goto(DOCS_URL, { waitUntil: 'load', timeout: 30000 });
    if (!response || response.status() !== 200) {
      throw new Error(`GET ${DOCS_URL} answered ${response && response.status()}`);
    }
    // Swagger UI fetches /openapi.json and draws one .opblock per operation.
    await page.waitForSelector('.opblock', { timeout: 30000 });
    const operations = await page.$$eval('.opblock', (blocks) => blocks.map((block) => {
      const method = block.querySelector('.opblock-summary-method');
      const path = block.querySelector('.opblock-summary-path');
      return `${method ? method.textContent.trim() : '?'} ${
        path ? (path.getAttribute('data-path') || path.textContent).replace(/\u200b/g, '').trim() : '?'}`;
    }));
    const title = await page.$eval('.info .title', (el) => el.textContent.trim()).catch(() => '');
    const missing = EXPECT.filter((op) => !operations.includes(op));
    if (missing.length) {
      problems.push(`not rendered: ${JSON.stringify(missing)}; rendered: ${JSON.stringify(operations)}`);
    }
    console.log(JSON.stringify({ title, operations }));
  } finally {
    await browser.close();
  }
  if (problems.length) {
    console.error(problems.join('\n'));
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : String(error));
  process.exit(1);
});
