// The console in a real browser (Debian's Chromium, driven by playwright-core) against a
// running `skyhook local`: sign-in, a subscriber created, an event published from the
// sandbox and seen delivered, in the log and on the chart, disable and enable, a dead letter
// redriven, a tenant's limits set and reset by the bootstrap key, a reader's read-only view,
// and the phone width. Screenshots go to SHOTS_DIR.
// Fails on any console error or uncaught exception on the page.
//
// Environment: BASE_URL, ADMIN_KEY, RECEIVER_URL (a verifying receiver), SHOTS_DIR,
// CHROMIUM (default /usr/bin/chromium).

import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.BASE_URL;
const adminKey = process.env.ADMIN_KEY;
const receiver = process.env.RECEIVER_URL;
const shots = process.env.SHOTS_DIR;
for (const [k, v] of Object.entries({ BASE_URL: base, ADMIN_KEY: adminKey, RECEIVER_URL: receiver, SHOTS_DIR: shots })) {
  if (!v) throw new Error(`${k} is not set`);
}
mkdirSync(shots, { recursive: true });

const problems = [];
const taken = [];
// While a step means to fail a request (a wrong key: 401; limits out of bounds: 422), the
// browser's own note of that status is expected.
let expectRefusal = null;
let step = 0;

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

async function call(method, path, body, key = adminKey) {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function eventually(what, fn, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    if (expectRefusal && m.text().includes(`status of ${expectRefusal}`)) return;
    problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('dialog', (d) => d.accept());

  const shot = async (name) => {
    // Nothing on any page runs off its side, at either width.
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    if (scroll > inner + 1) problems.push(`${name}: the page is ${scroll} px wide in a ${inner} px window`);
    step += 1;
    const file = join(shots, `${String(step).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    taken.push(file);
  };
  // Goes to a page and waits until it has loaded (the console marks main with its hash).
  const go = async (hash) => {
    await page.goto(`${base}/console${hash}`);
    if (hash) await page.waitForSelector(`main[data-page="${hash}"]`);
  };

  // The page is served with a strict policy and no inline script.
  const served = await fetch(`${base}/console`);
  const csp = served.headers.get('content-security-policy') ?? '';
  check(served.status === 200 && csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), 'the console is served with a strict CSP');
  check(!(await served.text()).match(/<script(?![^>]*\bsrc=)/), 'the page has no inline script');

  // A wrong key is refused in words; the right one signs in.
  await go('');
  expectRefusal = 401;
  await page.fill('#key', 'sk_not_a_real_key_0000000000');
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('.notice.error');
  expectRefusal = null;
  const refused = await page.textContent('.notice.error');
  check(refused.includes('invalid_api_key'), `a wrong key is refused in words (${refused.trim()})`);
  await shot('sign-in-refused');
  await page.fill('#key', adminKey);
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('main[data-page="#/subscribers"]');
  check((await page.textContent('header.top .who')).includes('admin'), 'signed in as admin');

  // Create a subscriber from the form.
  await page.click('#new-subscriber');
  await page.fill('#create-subscriber input[name=url]', receiver);
  await page.fill('#create-subscriber input[name=event_types]', 'order.*');
  await page.fill('#create-subscriber input[name=description]', 'browser test');
  await page.click('#create-subscriber button[type=submit]');
  await page.waitForSelector('.notice.ok code.secret');
  const subId = (await page.textContent('.notice.ok a')).trim();
  check(subId.startsWith('sub_'), `subscriber ${subId} created, its secret shown once`);
  await page.waitForSelector(`#subscribers tr[data-id="${subId}"]`);
  await shot('subscriber-created');

  // Publish from the sandbox and watch the delivery arrive.
  await go('#/sandbox');
  await page.fill('#sandbox-type', 'order.created');
  await page.fill('#sandbox-data', JSON.stringify({ id: 'ord_browser', total: 4200 }));
  await page.click('#sandbox button[type=submit]');
  await page.waitForSelector(`#sandbox-live tr[data-subscriber="${subId}"][data-status="delivered"]`, { timeout: 30_000 });
  const eventId = (await page.textContent('#sandbox-result .notice.ok a')).trim();
  check(eventId.startsWith('evt_'), `event ${eventId} published and delivered`);
  await shot('sandbox-delivered');

  // The event page and the delivery log show it.
  await go(`#/events/${eventId}`);
  await page.waitForSelector(`tr[data-subscriber="${subId}"][data-status="delivered"]`);
  await shot('event');
  await go(`#/deliveries?event_id=${eventId}`);
  await page.waitForSelector('#log ul.attempts li');
  const logged = await page.textContent('#log ul.attempts li');
  check(logged.includes('success') && logged.includes('HTTP 200'), 'the delivery log shows the successful attempt');
  await page.click('#log ul.attempts summary');
  await shot('delivery-log');

  // The chart shows it once the stats have been folded.
  await go(`#/subscribers/${subId}`);
  await page.waitForSelector('#charts svg.chart');
  await page.selectOption('#bucket', 'minute');
  await eventually('the delivery on the chart', async () => {
    await Promise.all([
      page.waitForResponse((r) => r.url().includes('/v1/stats/timeseries')),
      page.click('#refresh-charts'),
    ]);
    await page.waitForSelector('#refresh-charts:not([disabled])');
    return page.evaluate(() => [...document.querySelectorAll('#charts g.bar')]
      .reduce((n, g) => n + Number(g.dataset.success), 0) >= 1);
  });
  check(await page.$('#charts svg.chart polyline.p50, #charts svg.chart circle.p50'), 'the latency chart has a p50 point');
  await shot('subscriber-chart');

  // Disable, then enable.
  await page.click('#toggle-active');
  await page.waitForSelector('#subscriber-facts[data-active="false"]');
  await shot('subscriber-disabled');
  await page.click('#toggle-active');
  await page.waitForSelector('#subscriber-facts[data-active="true"]');
  console.log('ok: disabled and enabled again');

  // A dead letter: a subscriber nobody listens for, one event, two quick attempts.
  const dead = await call('POST', '/v1/subscribers', { url: 'http://127.0.0.1:9/nobody', event_types: ['dead.*'] });
  const deadEvent = await call('POST', '/v1/events', { type: 'dead.letter', data: { n: 1 } });
  await eventually('the dead letter', async () => {
    const page1 = await call('GET', `/v1/dlq?subscriber_id=${dead.id}`);
    return page1.data.length > 0;
  }, 60);
  await go('#/dlq');
  await page.waitForSelector(`#dead tr[data-event="${deadEvent.id}"]`);
  await shot('dead-letters');
  await page.fill('#dlq-subscriber', dead.id);
  await page.click('#redrive');
  await page.waitForSelector('#redrive-progress .notice.ok');
  const done = await page.textContent('#redrive-progress');
  check(/1 sent again/.test(done), `redrive reported its progress (${done.trim()})`);
  await shot('redriven');

  // API keys and the audit log.
  await go('#/keys');
  await page.waitForSelector('#create-key');
  await go('#/audit');
  check((await page.textContent('main')).includes('subscriber.create'), 'the audit log lists the changes');
  await shot('audit');

  // Tenants (the bootstrap key's page): limits set for a tenant not listed yet, seen in the
  // table; limits out of the API's bounds refused in words; then back to the defaults.
  check((await page.textContent('header.top nav')).includes('Tenants'), 'the bootstrap key gets the Tenants page');
  const tenantId = `browser-${Date.now().toString(36)}`;
  const tenantRow = `#tenants tr[data-id="${tenantId}"]`;
  await go('#/tenants');
  await page.waitForSelector('#tenants tr[data-id="default"]');
  await page.fill('#tenant-id', tenantId);
  await page.fill('#tenant-rate', '250');
  await page.fill('#tenant-burst', '2000');
  await page.click('#tenant-limits button[type=submit]');
  await page.waitForSelector(`${tenantRow}[data-custom="true"]`);
  const [rate, burst, kind] = await Promise.all(['td.rate', 'td.burst', 'td .badge'].map((c) => page.textContent(`${tenantRow} ${c}`)));
  check(rate === '250' && burst === '2000' && kind === 'its own', `${tenantId} listed with its own limits (${rate}/s, burst ${burst})`);
  check((await page.textContent('#tenant-messages .notice.ok')).includes('250 events/s'), 'the new limits are confirmed in words');
  await shot('tenants');
  // The form's own bounds turned off, so the API's check is the one that answers.
  await page.evaluate(() => { document.getElementById('tenant-limits').noValidate = true; });
  await page.fill('#tenant-rate', '0');
  expectRefusal = 422;
  await page.click('#tenant-limits button[type=submit]');
  await page.waitForSelector('#tenant-messages .notice.error');
  expectRefusal = null;
  const invalid = await page.textContent('#tenant-messages .notice.error');
  check(invalid.includes('invalid_limits'), `limits out of bounds are refused in words (${invalid.trim()})`);
  await page.click(`${tenantRow} button.danger`);
  await page.waitForSelector(`${tenantRow}[data-custom="false"]`);
  check((await page.textContent(`${tenantRow} td .badge`)) === 'defaults', `${tenantId} is back on the defaults in the table`);
  check((await call('GET', `/v1/tenants/${tenantId}`)).custom_limits === false, `${tenantId} is back on the defaults in the API`);

  // At a phone's width nothing runs off the side.
  await page.setViewportSize({ width: 390, height: 844 });
  for (const [hash, name] of [['#/subscribers', 'phone-subscribers'], [`#/subscribers/${subId}`, 'phone-subscriber'], ['#/deliveries', 'phone-log'], ['#/tenants', 'phone-tenants']]) {
    await go(hash);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    check(width <= 391, `${hash} fits 390 px (${width})`);
    await shot(name);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  // A reader sees everything and none of the write buttons.
  const reader = await call('POST', '/v1/api-keys', { role: 'reader', description: 'browser test' });
  await go('#/subscribers');
  await page.click('header.top button.link');
  await page.waitForSelector('#key');
  await page.fill('#key', reader.key);
  await page.click('form.signin button[type=submit]');
  await page.waitForSelector('main[data-page="#/subscribers"]');
  check(!(await page.$('#new-subscriber')), 'a reader gets no "New subscriber"');
  check(!(await page.$('#subscribers button')), 'a reader gets no enable/disable buttons');
  await go(`#/subscribers/${subId}`);
  await page.waitForSelector('#subscriber-facts');
  check(!(await page.$('#toggle-active')) && !(await page.$('#edit-subscriber')), 'a reader gets no actions on a subscriber');
  check(!(await page.textContent('header.top nav')).includes('API keys'), 'a reader gets no API keys page');
  check(!(await page.textContent('header.top nav')).includes('Tenants'), 'a reader gets no Tenants page');
  await shot('reader');
  check(await page.evaluate(() => document.cookie === ''), 'no cookie is set');

  if (problems.length) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
  console.log('ok: no console errors');
} finally {
  await browser.close();
  // One page to look at them all, beside them.
  const index = join(shots, 'index.html');
  writeFileSync(index, `<!doctype html><meta charset="utf-8"><title>Skyhook console screenshots</title>\n${
    taken.map((f) => `<h2>${basename(f)}</h2><img src="${basename(f)}" width="640">`).join('\n')}\n`);
  console.log(`screenshots (${taken.length}), all on ${index}:`);
  for (const f of taken) console.log(`  ${f}`);
}
