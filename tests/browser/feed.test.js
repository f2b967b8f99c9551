'use strict';
/* Browser tests of feedd's page (www/) in Debian's chromium, against real
 * feedd instances and the PostgreSQL that tests/browser/run started.
 * Run through tests/browser/run, which sets the BROWSER_* variables.
 * Arguments: substrings of test names to run only those. */

const { chromium } = require('playwright-core');
const childProcess = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');

const REPO = need('BROWSER_REPO');
const FEEDD = need('BROWSER_FEEDD');
const CHROMIUM = need('BROWSER_CHROMIUM');
const RUN_DIR = need('BROWSER_RUN_DIR');
const PG_SOCKET = need('BROWSER_PG_SOCKET');
const PSQL = need('BROWSER_PSQL');
const ARTIFACTS = need('BROWSER_ARTIFACTS');
const PORT_BASE = Number(process.env.BROWSER_PORT_BASE || 26100);
const SCREENSHOT = path.join(REPO, 'docs', 'screenshot.png');

/* The golden fixture's "now": its newest item is at 12:00:00. */
const GOLDEN_NOW = new Date('2026-02-16T12:07:00Z');

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
	'--disable-background-networking', '--disable-component-update', '--disable-sync'];

const SANITIZER_MARKERS = ['ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:'];

function need(name) {
	const v = process.env[name];
	if (!v) {
		console.error(`feed.test.js: ${name} is not set: run tests/browser/run`);
		process.exit(2);
	}
	return v;
}

/* --- a tiny test runner ---------------------------------------------------- */

const tests = [];

function test(name, fn) {
	tests.push({ name, fn });
}

class TestFailure extends Error {}

function check(cond, message) {
	if (!cond)
		throw new TestFailure(message);
}

function checkEqual(actual, expected, what) {
	const a = JSON.stringify(actual), e = JSON.stringify(expected);
	if (a !== e)
		throw new TestFailure(`${what}:\n  expected ${clip(e)}\n  got      ${clip(a)}`);
}

/* Two key lists: where they first differ, for a readable failure. */
function checkSameList(actual, expected, what) {
	if (actual.length === expected.length && actual.every((k, i) => k === expected[i]))
		return;
	let i = 0;
	while (i < actual.length && i < expected.length && actual[i] === expected[i])
		i++;
	throw new TestFailure(`${what}: ${actual.length} items, expected ${expected.length}; ` +
		`first difference at ${i}: got ${actual[i]}, expected ${expected[i]}`);
}

function clip(s) {
	return s.length > 600 ? s.slice(0, 600) + '…' : s;
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/* --- feedd instances ------------------------------------------------------- */

const instances = [];
let nextPort = PORT_BASE;

function portFree(port) {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.once('error', () => resolve(false));
		s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
	});
}

async function freePort() {
	for (; nextPort < PORT_BASE + 900; nextPort++) {
		if (await portFree(nextPort))
			return nextPort++;
	}
	throw new Error(`no free port in ${PORT_BASE}..${PORT_BASE + 899}`);
}

function conninfo(db) {
	return `host=${PG_SOCKET} port=5432 dbname=${db} user=postgres`;
}

function configValue(v) {
	if (typeof v === 'number')
		return String(v);
	if (/^[A-Za-z0-9_.-]+$/.test(v))
		return v;
	return '"' + v.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/* Starts feedd on the database `db` (config overrides in conf, extra
 * environment in env) and waits for /healthz. */
async function startFeedd(name, db, { conf = {}, env = {} } = {}) {
	const dir = path.join(RUN_DIR, name);
	fs.mkdirSync(dir, { recursive: true });
	const port = await freePort();
	const settings = {
		listen: `127.0.0.1:${port}`,
		workers: 2,
		pid_file: path.join(dir, 'feedd.pid'),
		error_log: path.join(dir, 'error.log'),
		access_log: path.join(dir, 'access.log'),
		log_level: 'info',
		shutdown_timeout: '3s',
		www_root: path.join(REPO, 'www'),
		db: conninfo(db),
		feed_window: 0,
		cache_size: '32MB',
		...conf
	};
	const confPath = path.join(dir, 'feedd.conf');
	fs.writeFileSync(confPath, '# written by tests/browser/feed.test.js\n' +
		Object.entries(settings).map(([k, v]) => `${k} = ${configValue(v)}`).join('\n') + '\n');
	const stderrPath = path.join(dir, 'stderr.log');
	const out = fs.openSync(stderrPath, 'a');
	const proc = childProcess.spawn(FEEDD, ['-c', confPath], {
		cwd: dir,
		env: { ...process.env, ...env },
		stdio: ['ignore', out, out],
		detached: true
	});
	fs.closeSync(out);
	const inst = {
		name, port, dir, proc, exited: false,
		base: `http://127.0.0.1:${port}`,
		url(p) {
			return this.base + p;
		},
		logs() {
			return ['error.log', 'stderr.log'].map((f) => {
				try {
					return fs.readFileSync(path.join(dir, f), 'utf8');
				} catch (e) {
					return '';
				}
			}).join('\n');
		}
	};
	proc.on('exit', () => {
		inst.exited = true;
	});
	instances.push(inst);
	const deadline = Date.now() + 15000;
	for (;;) {
		if (inst.exited)
			throw new Error(`feedd ${name} exited at start:\n${tail(inst.logs())}`);
		try {
			const res = await fetch(inst.url('/healthz'));
			if (res.status === 200)
				return inst;
		} catch (e) {
			/* not listening yet */
		}
		if (Date.now() > deadline)
			throw new Error(`feedd ${name} did not answer /healthz:\n${tail(inst.logs())}`);
		await sleep(50);
	}
}

function tail(text, n = 30) {
	return text.split('\n').slice(-n).join('\n');
}

async function stopFeedd(inst) {
	if (!inst.exited) {
		try {
			process.kill(inst.proc.pid, 'SIGTERM');
		} catch (e) {
			/* gone */
		}
		const deadline = Date.now() + 10000;
		while (!inst.exited && Date.now() < deadline)
			await sleep(50);
	}
	/* Whatever is left of its process group (workers of a killed master). */
	try {
		process.kill(-inst.proc.pid, 'SIGKILL');
	} catch (e) {
		/* none left */
	}
}

function psql(db, sql) {
	const r = childProcess.spawnSync(PSQL, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', conninfo(db), '-c', sql],
		{ encoding: 'utf8' });
	if (r.status !== 0)
		throw new Error(`psql failed: ${r.stderr || r.stdout}`);
	return r.stdout;
}

/* --- the API, read directly --------------------------------------------------- */

async function getJson(inst, p) {
	const res = await fetch(inst.url(p));
	const body = await res.text();
	if (res.status !== 200)
		throw new Error(`GET ${p}: ${res.status} ${body.slice(0, 300)}`);
	return JSON.parse(body);
}

function pagePath(cursor) {
	return '/api/feed?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
}

/* Every page of /api/feed, following next_cursor. */
async function walk(inst) {
	const pages = [];
	let cursor = null;
	for (let n = 0; n < 1000; n++) {
		const page = await getJson(inst, pagePath(cursor));
		pages.push({ cursor, items: page.items, next: page.next_cursor });
		if (!page.next_cursor)
			return pages;
		cursor = page.next_cursor;
	}
	throw new Error('the walk did not end');
}

function keyOf(item) {
	return item.type + ' ' + item.id;
}

/* --- the browser ------------------------------------------------------------------ */

let browser = null;

/* A 1x1 image for every picture the data points at (the CDN is not part of
 * the test; nothing leaves 127.0.0.1). */
const PLACEHOLDER_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="280">' +
	'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="#1e3a8a"/>' +
	'<stop offset="1" stop-color="#7c3aed"/></linearGradient></defs><rect width="640" height="280" fill="url(#g)"/>' +
	'<circle cx="470" cy="90" r="46" fill="#67e8f9" opacity=".7"/></svg>';

async function newPage(opts = {}) {
	const ctx = await browser.newContext({
		viewport: opts.viewport || { width: 1280, height: 900 },
		deviceScaleFactor: opts.deviceScaleFactor || 1,
		isMobile: !!opts.isMobile,
		hasTouch: !!opts.isMobile,
		locale: 'en-GB',
		timezoneId: 'UTC',
		serviceWorkers: 'block'
	});
	await ctx.route((u) => u.hostname !== '127.0.0.1', (route) => {
		if (route.request().resourceType() === 'image')
			return route.fulfill({ status: 200, contentType: 'image/svg+xml', body: PLACEHOLDER_SVG });
		return route.abort();
	});
	const page = await ctx.newPage();
	page.setDefaultTimeout(20000);
	const log = { console: [], errors: [], api: [] };
	page.on('console', (m) => {
		if (m.type() === 'error')
			log.console.push(m.text());
	});
	page.on('pageerror', (e) => log.errors.push(String(e && e.stack || e)));
	page.on('request', (r) => {
		const u = new URL(r.url());
		if (u.pathname.startsWith('/api/'))
			log.api.push({ path: u.pathname, cursor: u.searchParams.get('cursor'), url: r.url() });
	});
	/* Counts the EventSources the page holds open at once (an EventSource
	 * only ends by close(); one never closed would also reconnect). */
	await page.addInitScript(() => {
		const Native = window.EventSource;
		if (typeof Native !== 'function')
			return;
		let open = 0;
		window.__es = { max: 0, created: 0, open: () => open };
		window.EventSource = class extends Native {
			constructor(url, init) {
				super(url, init);
				open++;
				window.__es.created++;
				window.__es.max = Math.max(window.__es.max, open);
				this.__counted = true;
			}

			close() {
				if (this.__counted) {
					this.__counted = false;
					open--;
				}
				super.close();
			}
		};
	});
	return { ctx, page, log };
}

async function closePage(p) {
	if (p)
		await p.ctx.close().catch(() => {});
}

function status(page) {
	return page.evaluate(() => ({
		state: document.getElementById('feed-status').getAttribute('data-state'),
		pages: Number(document.getElementById('feed').getAttribute('data-pages') || 0),
		text: document.getElementById('feed-status').textContent,
		error: document.getElementById('feed-error').hidden ? null
			: document.getElementById('feed-error-text').textContent
	}));
}

async function waitPages(page, n) {
	await page.waitForFunction((want) => {
		const s = document.getElementById('feed-status').getAttribute('data-state');
		const pages = Number(document.getElementById('feed').getAttribute('data-pages') || 0);
		return pages >= want && s !== 'loading';
	}, n);
}

async function waitError(page) {
	await page.waitForFunction(() => !document.getElementById('feed-error').hidden);
}

/* Scrolls until the page says it is all caught up; returns the pages loaded. */
async function scrollToEnd(page, maxPages = 200) {
	for (let i = 0; i < maxPages + 5; i++) {
		const s = await status(page);
		if (s.error !== null)
			throw new TestFailure(`the page shows an error after ${s.pages} pages: ${s.error}`);
		if (s.state === 'done')
			return s.pages;
		await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
		await page.waitForFunction((before) => {
			const st = document.getElementById('feed-status').getAttribute('data-state');
			const pages = Number(document.getElementById('feed').getAttribute('data-pages') || 0);
			return st === 'done' || st === 'error' || (pages > before && st !== 'loading');
		}, s.pages);
	}
	throw new TestFailure('the page never said it was all caught up');
}

function domKeys(page) {
	return page.$$eval('#feed > li > article', (list) => list.map((a) => a.dataset.type + ' ' + a.dataset.id));
}

function streamRequests(log) {
	return log.api.filter((r) => r.path === '/api/feed/stream');
}

function jsonRequests(log) {
	return log.api.filter((r) => r.path === '/api/feed');
}

function checkClean(log, what) {
	checkEqual(log.errors, [], `page errors (${what})`);
	checkEqual(log.console, [], `console errors (${what})`);
}

function checkUnique(keys, what) {
	const seen = new Set();
	for (const k of keys) {
		check(!seen.has(k), `${what}: ${k} is shown twice`);
		seen.add(k);
	}
}

/* --- the tests ------------------------------------------------------------------------ */

const env = {};
let stopping = false;       /* a signal came: no more tests, no more reports */

test('progressive: first cards show before feed_complete, final order equals /api/feed', async () => {
	/* A fresh instance: its cache is cold, so the page is computed while
	 * the stream runs, and the actions source answers 1.5 s late. */
	const slow = await startFeedd('slow', 'golden', { env: { FEEDD_TEST_SLOW_SOURCE: 'actions:1500' } });
	const p = await newPage();
	try {
		await p.page.goto(slow.url('/'));
		/* The moment cards are on screen while the page still waits for
		 * feed_complete (polled every animation frame). */
		const early = await p.page.waitForFunction(() => {
			const cards = document.querySelectorAll('#feed > li > article');
			const s = document.getElementById('feed-status');
			if (cards.length === 0 || s.getAttribute('data-state') !== 'loading')
				return null;
			return {
				types: Array.from(cards, (c) => c.dataset.type),
				indicator: s.textContent,
				skeletonHidden: document.getElementById('skeleton').hidden
			};
		}, null, { polling: 'raf', timeout: 10000 }).then((h) => h.jsonValue(), (e) => {
			throw new TestFailure('no cards were seen before feed_complete' +
				(/SLOW_SOURCE=actions:1500 \(armed\)/.test(slow.logs()) ? ''
					: ' (feedd did not arm FEEDD_TEST_SLOW_SOURCE: build it with --enable-test-hooks)') +
				`: ${e.message.split('\n')[0]}`);
		});
		check(early.skeletonHidden, 'the skeleton is still shown with cards on screen');
		check(/loading more/i.test(early.indicator), `no "loading more" indicator while streaming: "${early.indicator}"`);
		const fromActions = early.types.filter((t) => ['conversation', 'dweller_action', 'activity_group'].includes(t));
		checkEqual(fromActions, [], 'items of the slowed source before it answered');
		await waitPages(p.page, 1);
		const shown = await domKeys(p.page);
		const page1 = await getJson(slow, pagePath(null));
		checkSameList(shown, page1.items.map(keyOf), 'the streamed page against /api/feed');
		check(shown.some((k) => k.startsWith('conversation ')), 'the slowed source\'s conversation never arrived');
		checkEqual(streamRequests(p.log).length, 1, 'stream requests');
		checkEqual(jsonRequests(p.log).length, 0, 'JSON requests (no fallback expected)');
		const es = await p.page.evaluate(() => ({ open: window.__es.open(), max: window.__es.max }));
		checkEqual(es, { open: 0, max: 1 }, 'EventSources open now / at most');
		checkClean(p.log, 'progressive');
	} finally {
		await closePage(p);
		await stopFeedd(slow);
	}
});

test('infinite scroll: every item exactly once, in order, one page at a time', async () => {
	const p = await newPage();
	try {
		await p.page.goto(env.scroll.url('/'));
		const pages = await scrollToEnd(p.page);
		const shown = await domKeys(p.page);
		const walked = await walk(env.scroll);
		check(walked.length > 10, `the scroll data has only ${walked.length} pages`);
		checkUnique(shown, 'infinite scroll');
		checkSameList(shown, walked.flatMap((pg) => pg.items.map(keyOf)), 'the scrolled feed against walking /api/feed');
		checkEqual(pages, walked.length, 'pages loaded');
		/* One stream per page, each with the previous page's cursor: page 1
		 * once, never again, no reconnects. */
		checkEqual(streamRequests(p.log).map((r) => r.cursor), walked.map((pg) => pg.cursor),
			'cursors of the stream requests');
		checkEqual(jsonRequests(p.log).filter((r) => r.cursor !== null).length, 0, 'JSON fallback requests');
		const es = await p.page.evaluate(() => ({ open: window.__es.open(), max: window.__es.max }));
		checkEqual(es, { open: 0, max: 1 }, 'EventSources open now / at most');
		const end = await status(p.page);
		check(/all caught up/i.test(end.text), `no "all caught up" at the end: "${end.text}"`);
		checkClean(p.log, 'infinite scroll');
	} finally {
		await closePage(p);
	}
});

test('fallback: stream blocked -> /api/feed renders the same pages; streaming again when it is back', async () => {
	const walked = await walk(env.golden);
	check(walked.length === 3, `the golden fixture has ${walked.length} pages, expected 3`);
	const p = await newPage();
	try {
		const blockStream = (route) => route.abort();
		const isStream = (u) => u.pathname === '/api/feed/stream';
		await p.page.route(isStream, blockStream);
		await p.page.goto(env.golden.url('/'));
		await waitPages(p.page, 1);
		checkSameList(await domKeys(p.page), walked[0].items.map(keyOf), 'page 1 by the fallback');
		checkEqual(jsonRequests(p.log).map((r) => r.cursor), [null], 'JSON requests after page 1');

		/* Page 2: the stream is tried again, then the same page by JSON. */
		await p.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
		await waitPages(p.page, 2);
		checkSameList(await domKeys(p.page), walked.slice(0, 2).flatMap((pg) => pg.items.map(keyOf)),
			'pages 1-2 by the fallback');
		checkEqual(streamRequests(p.log).map((r) => r.cursor), [null, walked[1].cursor],
			'stream attempts (one per load)');
		checkEqual(jsonRequests(p.log).map((r) => r.cursor), [null, walked[1].cursor], 'JSON requests');

		/* The stream is back: page 3 streams. */
		await p.page.unroute(isStream, blockStream);
		await p.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
		await waitPages(p.page, 3);
		const shown = await domKeys(p.page);
		checkSameList(shown, walked.flatMap((pg) => pg.items.map(keyOf)), 'all pages');
		checkEqual(jsonRequests(p.log).length, 2, 'JSON requests after the stream came back');
		checkEqual(streamRequests(p.log).length, 3, 'stream requests');
		checkEqual((await status(p.page)).state, 'done', 'state at the end');
		checkEqual(p.log.errors, [], 'page errors');
	} finally {
		await closePage(p);
	}
});

test('fallback: the server\'s "event: error" and a missing EventSource both load by /api/feed', async () => {
	const page1 = await getJson(env.golden, pagePath(null));
	let p = await newPage();
	try {
		await p.page.route((u) => u.pathname === '/api/feed/stream', (route) => route.fulfill({
			status: 200,
			headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' },
			body: 'retry: 10000\n\nevent: error\ndata: {"detail":"database unavailable"}\n\n'
		}));
		await p.page.goto(env.golden.url('/'));
		await waitPages(p.page, 1);
		checkSameList(await domKeys(p.page), page1.items.map(keyOf), 'page 1 after event: error');
		checkEqual(streamRequests(p.log).length, 1, 'stream requests (no reconnect)');
		checkClean(p.log, 'event: error');
	} finally {
		await closePage(p);
	}
	p = await newPage();
	try {
		await p.page.addInitScript(() => {
			delete window.EventSource;
		});
		await p.page.goto(env.golden.url('/'));
		await waitPages(p.page, 1);
		checkSameList(await domKeys(p.page), page1.items.map(keyOf), 'page 1 without EventSource');
		checkEqual(streamRequests(p.log).length, 0, 'stream requests without EventSource');
		checkClean(p.log, 'no EventSource');
	} finally {
		await closePage(p);
	}
});

test('errors: both blocked -> a clear error, "Try again" loads that same page', async () => {
	const walked = await walk(env.golden);
	const p = await newPage();
	try {
		const api = (u) => u.pathname === '/api/feed/stream' || u.pathname === '/api/feed';
		const block = (route) => route.abort();
		await p.page.route(api, block);
		await p.page.goto(env.golden.url('/'));
		await waitError(p.page);
		let s = await status(p.page);
		check(/could not be loaded/i.test(s.error), `error text: "${s.error}"`);
		checkEqual((await domKeys(p.page)).length, 0, 'cards after the failed first load');
		const ui = await p.page.evaluate(() => ({
			retry: document.getElementById('feed-retry').tagName,
			role: document.getElementById('feed-error').getAttribute('role'),
			skeleton: document.getElementById('skeleton').hidden
		}));
		checkEqual(ui, { retry: 'BUTTON', role: 'alert', skeleton: true }, 'error UI');
		checkEqual(streamRequests(p.log).length, 1, 'stream requests (no reconnect loop)');

		await p.page.unroute(api, block);
		await p.page.getByRole('button', { name: 'Try again' }).click();
		await waitPages(p.page, 1);
		checkSameList(await domKeys(p.page), walked[0].items.map(keyOf), 'page 1 after "Try again"');
		check((await status(p.page)).error === null, 'the error is still shown');

		/* A failed load-more keeps the page and retries that page, not page 1. */
		await p.page.route(api, block);
		const before = p.log.api.length;
		await p.page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
		await waitError(p.page);
		s = await status(p.page);
		check(/more activity could not be loaded/i.test(s.error), `load-more error text: "${s.error}"`);
		checkEqual((await domKeys(p.page)).length, walked[0].items.length, 'cards after the failed load-more');
		await p.page.unroute(api, block);
		await p.page.getByRole('button', { name: 'Try again' }).click();
		await waitPages(p.page, 2);
		const shown = await domKeys(p.page);
		checkUnique(shown, 'after the retry');
		checkSameList(shown, walked.slice(0, 2).flatMap((pg) => pg.items.map(keyOf)), 'pages 1-2 after the retry');
		const cursors = p.log.api.slice(before).filter((r) => r.path === '/api/feed/stream' || r.path === '/api/feed')
			.map((r) => r.cursor);
		check(cursors.length > 0 && cursors.every((c) => c === walked[1].cursor),
			`requests after page 1 should all be for page 2: ${JSON.stringify(cursors)}`);
		checkEqual(p.log.errors, [], 'page errors');
	} finally {
		await closePage(p);
	}
});

test('every item type has its card; relative times; no console errors; screenshots', async () => {
	const walked = await walk(env.golden);
	const items = walked.flatMap((pg) => pg.items);
	const types = new Set(items.map((i) => i.type));
	for (const t of ['world_created', 'proposal_submitted', 'proposal_validated', 'aspect_proposed',
		'aspect_approved', 'conversation', 'dweller_action', 'activity_group', 'dweller_created',
		'agent_registered', 'story_created', 'story_revised', 'review_submitted', 'story_reviewed',
		'feedback_resolved', 'proposal_revised', 'proposal_graduated'])
		check(types.has(t), `the golden fixture has no ${t} item`);

	const p = await newPage();
	try {
		await p.page.clock.install({ time: GOLDEN_NOW });
		await p.page.goto(env.golden.url('/'));
		await scrollToEnd(p.page);
		checkSameList(await domKeys(p.page), items.map(keyOf), 'all cards');

		const cards = await p.page.$$eval('#feed > li > article', (list) => list.map((a) => ({
			type: a.dataset.type,
			id: a.dataset.id,
			cls: a.className,
			title: (a.querySelector('.card__title') || {}).textContent || '',
			kind: (a.querySelector('.card__kind') || {}).textContent || '',
			body: (a.querySelector('.card__body') || {}).textContent || '',
			time: a.querySelector('.card__time') && {
				text: a.querySelector('.card__time').textContent,
				title: a.querySelector('.card__time').getAttribute('title'),
				datetime: a.querySelector('.card__time').getAttribute('datetime')
			},
			msgs: Array.from(a.querySelectorAll('.msg'), (m) => ({
				depth: Number(m.dataset.depth),
				name: m.querySelector('.msg__name').textContent
			})),
			sub: (a.querySelector('.card__sub') || {}).textContent || '',
			rows: a.querySelectorAll('.activity__row').length,
			sev: Array.from(a.querySelectorAll('.sev'), (s) => s.querySelector('.sev__count').textContent),
			timeline: (a.querySelector('.timeline') || {}).textContent || null,
			labelled: !!document.getElementById(a.getAttribute('aria-labelledby'))
		})));
		const byKey = new Map(cards.map((c) => [c.type + ' ' + c.id, c]));
		for (const item of items) {
			const c = byKey.get(keyOf(item));
			check(!/card--generic/.test(c.cls), `${keyOf(item)} got the generic card`);
			check(c.title.trim() !== '' && c.kind.trim() !== '', `${keyOf(item)} has no title or kind`);
			check(c.labelled, `${keyOf(item)} is not labelled by its title`);
			check(c.time && c.time.title && c.time.datetime, `${keyOf(item)} has no time with a title`);
			if (item.type === 'review_submitted') {
				const s = item.severities;
				checkEqual(c.sev, [s.critical, s.important, s.minor].map(String), `severities of ${item.id}`);
			}
			if (item.type === 'conversation') {
				checkEqual(c.msgs.length, item.actions.length, `messages of ${item.id}`);
				checkEqual(c.msgs[0].depth, 0, `first message depth of ${item.id}`);
				if (item.action_count > item.actions.length)
					check(c.sub.includes(`Latest ${item.actions.length} of ${item.action_count}`),
						`${item.id}: "${c.sub}" does not say it shows the latest of all`);
			}
			if (item.type === 'activity_group')
				checkEqual(c.rows, item.actions.length, `rows of ${item.id}`);
			if (item.type === 'aspect_approved' || item.type === 'aspect_proposed') {
				const te = item.timeline_entry;
				if (te && te.event) {
					check(c.timeline && c.timeline.includes(String(te.year)) && c.timeline.includes(te.event),
						`${item.id}: timeline "${c.timeline}" lacks ${te.year} ${te.event}`);
				} else {
					checkEqual(c.timeline, null, `timeline of ${item.id}`);
				}
			}
		}

		/* The thread of the fixture: a root, a reply, a reply to the reply. */
		const thread = byKey.get('conversation thread-61000000-0000-4000-8000-000000000001');
		checkEqual(thread.msgs, [{ depth: 0, name: 'Kaela Voss' }, { depth: 1, name: 'Tomas Okafor' },
			{ depth: 2, name: 'Kaela Voss' }], 'the thread of 61..01');
		const world = byKey.get('world_created 20000000-0000-4000-8000-000000000001');
		checkEqual(world.time.text, '7 min ago', 'relative time of the newest world');
		checkEqual(world.time.datetime, '2026-02-16T12:00:00.000Z', 'datetime of the newest world');
		check(/2026/.test(world.time.title), `absolute time in the title: "${world.time.title}"`);

		/* A long thread opens with its button. */
		const longId = 'thread-64000000-0000-4000-8000-000000000001';
		const longCard = p.page.locator(`article[data-id="${longId}"]`);
		const hiddenBefore = await longCard.locator('.msg:visible').count();
		check(hiddenBefore < 50, `the 50-message thread shows ${hiddenBefore} messages before opening`);
		await longCard.getByRole('button', { name: /Show \d+ more messages/ }).click();
		checkEqual(await longCard.locator('.msg:visible').count(), 50, 'messages shown after opening');

		/* A minute later every relative time moves on (and the 30 s poll
		 * finds nothing new). */
		await p.page.clock.fastForward(60000);
		const worldCard = p.page.locator('article[data-id="20000000-0000-4000-8000-000000000001"][data-type="world_created"]');
		await p.page.waitForFunction(() => {
			const t = document.querySelector('article[data-type="world_created"] .card__time');
			return t && t.textContent === '8 min ago';
		});
		checkEqual(await worldCard.locator('.card__time').textContent(), '8 min ago', 'relative time a minute later');
		check(await p.page.locator('#new-items').isHidden(), 'a new-items bar without new items');

		await p.page.evaluate(() => window.scrollTo(0, 0));
		fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
		await p.page.screenshot({ path: SCREENSHOT, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1500 } });
		fs.copyFileSync(SCREENSHOT, path.join(ARTIFACTS, 'desktop.png'));
		checkClean(p.log, 'every item type');
	} finally {
		await closePage(p);
	}

	/* Phone width: no sideways scrolling, a screenshot for the record. */
	const phone = await newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true });
	try {
		await phone.page.clock.install({ time: GOLDEN_NOW });
		await phone.page.goto(env.golden.url('/'));
		await waitPages(phone.page, 1);
		await scrollToEnd(phone.page);
		const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		check(overflow <= 0, `the page is ${overflow}px wider than a phone`);
		await phone.page.evaluate(() => window.scrollTo(0, 0));
		await phone.page.screenshot({ path: path.join(ARTIFACTS, 'phone.png') });
		checkClean(phone.log, 'phone');
	} finally {
		await closePage(phone);
	}
});

test('unknown types and hostile data: generic cards, text only, order and trimming kept', async () => {
	const T = '2026-02-16T12:00:00+00:00';
	const html = '<img src=x onerror="window.__xss=1">';
	const items = {
		A: { type: 'mystery_event', sort_date: '2026-02-16T12:00:00.5+00:00', id: 'm1', created_at: T,
			title: html, note: '<script>window.__xss=2</script>', nested: { a: 1 } },
		B: { type: 'world_created', sort_date: T, id: '\u{1F600}', created_at: T, world: null, agent: 'oops' },
		C: { type: 'conversation', sort_date: T, id: '\uFB00', created_at: T, actions: 'x', world: 5 },
		D: { type: 'review_submitted', sort_date: '2026-02-16T12:00:00Z', id: '\u00e9', created_at: T,
			severities: null, reviewer_name: '<b>bold</b>', content_name: html },
		E: { type: 'story_created', sort_date: T, id: 'z', created_at: T,
			story: { title: 'T', cover_image_url: 'javascript:window.__xss=3', video_url: 'javascript:window.__xss=4' } },
		F: { type: 'aspect_approved', sort_date: '2026-02-16T11:00:00+00:00', id: 'f', created_at: T,
			aspect: { title: 'A' }, timeline_entry: 'Year of the flood' },
		G: { type: 'dweller_action', sort_date: '2026-02-16T10:00:00+00:00', id: 'g', created_at: T,
			action: null, dweller: { name: 42 } },
		H: { type: 'activity_group', sort_date: 'not a date', id: 'h', actions: [null, 1, { content: 'ok' }] },
		I: { type: 42, id: 'i', sort_date: '2026-02-16T09:00:00+00:00' }
	};
	const sse = (events) => events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');
	const cursor1 = '2026-02-16T11:00:00Z~f';
	const seen = [];
	/* Page 2 is held until page 1 has been checked (the page asks for it
	 * at once: the sentinel is in view). */
	let release;
	const held = new Promise((resolve) => {
		release = resolve;
	});
	const p = await newPage();
	try {
		await p.page.route((u) => u.pathname === '/api/feed/stream', async (route) => {
			const u = new URL(route.request().url());
			seen.push({ cursor: u.searchParams.get('cursor'), raw: u.search });
			if (u.searchParams.get('cursor') !== null)
				await held;
			const body = u.searchParams.get('cursor') === null
				? sse([['feed_items', { items: [items.E, items.C, items.A], partial: true }],
					['feed_items', { items: [items.D, items.B, items.F, items.G, items.H, items.I, null, 'str'], partial: false }],
					['feed_complete', { next_cursor: cursor1, total_items: 6 }]])
				: sse([['feed_items', { items: [items.F, items.G, items.H, items.I], partial: false }],
					['feed_complete', { next_cursor: null, total_items: 3 }]]);
			return route.fulfill({ status: 200, headers: { 'Content-Type': 'text/event-stream' }, body });
		});
		await p.page.goto(env.golden.url('/'));
		await p.page.waitForFunction(() => document.getElementById('feed').getAttribute('data-pages') === '1');
		const k = (x) => (typeof x.type === 'string' ? x.type : 'unknown') + ' ' + x.id;
		/* 12:00:00.5 first; at 12:00:00 ids descend by bytes (U+1F600 >
		 * U+FB00 > U+00E9 > "z"); items after the cursor are trimmed. */
		checkSameList(await domKeys(p.page), ['A', 'B', 'C', 'D', 'E', 'F'].map((n) => k(items[n])),
			'page 1 (sorted, trimmed to the cursor)');
		release();
		await scrollToEnd(p.page);
		checkSameList(await domKeys(p.page), ['A', 'B', 'C', 'D', 'E', 'F', 'G', 'I', 'H'].map((n) => k(items[n])),
			'both pages');
		checkEqual(seen.map((s) => s.cursor), [null, cursor1], 'stream cursors');
		check(seen[1].raw.includes('cursor=2026-02-16T11%3A00%3A00Z~f'), `cursor not URL-encoded: ${seen[1].raw}`);

		const dom = await p.page.evaluate(() => ({
			xss: window.__xss,
			imgs: Array.from(document.querySelectorAll('#feed img'), (i) => i.getAttribute('src')),
			links: Array.from(document.querySelectorAll('#feed a'), (a) => a.getAttribute('href')),
			scripts: document.querySelectorAll('script').length,
			bold: document.querySelectorAll('#feed b').length,
			unknown: (document.querySelector('article[data-id="m1"]') || {}).textContent || '',
			unknownClass: (document.querySelector('article[data-id="m1"]') || {}).className || '',
			typeless: (document.querySelector('article[data-id="i"]') || {}).className || ''
		}));
		checkEqual(dom.xss, undefined, 'script from the data ran');
		checkEqual(dom.imgs, [], 'images with unsafe or bogus sources');
		checkEqual(dom.links, [], 'links with javascript: URLs');
		checkEqual(dom.scripts, 1, 'script elements');
		checkEqual(dom.bold, 0, 'markup from the data');
		check(dom.unknown.includes(html), 'the unknown item does not show its title as text');
		check(/card--generic/.test(dom.unknownClass) && /card--generic/.test(dom.typeless), 'unknown types use the generic card');
		checkClean(p.log, 'hostile data');
	} finally {
		release();
		await closePage(p);
	}
});

test('new items: a poll finds them, the bar merges them in order and scrolls to the top', async () => {
	const live = await startFeedd('live', 'live', { conf: { cache_ttl: '1s', cache_stale: '0s' } });
	const p = await newPage();
	try {
		await p.page.clock.install({ time: GOLDEN_NOW });
		await p.page.goto(live.url('/'));
		await waitPages(p.page, 1);
		const before = await domKeys(p.page);
		psql('live', `INSERT INTO platform_users (id, type, username, name, created_at) VALUES
			('10000000-0000-4000-8000-0000000000a1', 'AGENT', 'first_arrival', 'First Arrival', '2026-02-16 12:08:00+00'),
			('10000000-0000-4000-8000-0000000000a2', 'AGENT', 'second_arrival', 'Second Arrival', '2026-02-16 12:09:00+00')`);
		await p.page.evaluate(() => window.scrollTo(0, 1200));
		/* Polls run every 30 s of page time; the server's page-1 cache lives
		 * 1 s of real time. */
		let shown = false;
		for (let i = 0; i < 10 && !shown; i++) {
			await sleep(1100);
			const polled = p.page.waitForResponse((r) => {
				const u = new URL(r.url());
				return u.pathname === '/api/feed' && !u.searchParams.has('cursor');
			});
			await p.page.clock.fastForward(30000);
			await polled;
			await sleep(100);
			shown = await p.page.locator('#new-items').isVisible();
		}
		check(shown, 'no new-items bar after the new rows');
		checkEqual((await p.page.locator('#new-items').textContent()).replace(/^\W+/, ''), '2 new items', 'bar text');
		checkSameList(await domKeys(p.page), before, 'the feed before the bar is clicked');
		await p.page.screenshot({ path: path.join(ARTIFACTS, 'new-items.png') });
		await p.page.locator('#new-items').click();
		const after = await domKeys(p.page);
		checkUnique(after, 'after merging');
		checkSameList(after, ['agent_registered 10000000-0000-4000-8000-0000000000a2',
			'agent_registered 10000000-0000-4000-8000-0000000000a1'].concat(before), 'the feed after the bar');
		checkEqual(await p.page.evaluate(() => window.scrollY), 0, 'scroll position after the bar');
		check(await p.page.locator('#new-items').isHidden(), 'the bar is still shown');
		const live_ = await p.page.evaluate(() => document.querySelector('#new-items').parentElement.getAttribute('aria-live'));
		checkEqual(live_, 'polite', 'aria-live of the new-items region');
		/* The next poll finds nothing new. */
		const polled = p.page.waitForResponse((r) => new URL(r.url()).pathname === '/api/feed');
		await p.page.clock.fastForward(30000);
		await polled;
		await sleep(100);
		check(await p.page.locator('#new-items').isHidden(), 'the bar came back for items already shown');
		checkClean(p.log, 'new items');
	} finally {
		await closePage(p);
		await stopFeedd(live);
	}
});

/* --- main ---------------------------------------------------------------------------------- */

async function main() {
	const only = process.argv.slice(2);
	const selected = only.length ? tests.filter((t) => only.some((o) => t.name.includes(o))) : tests;
	let passed = 0, failed = 0;
	const onSignal = (sig) => {
		if (stopping)
			return;
		stopping = true;
		console.error(`browser: ${sig}, stopping`);
		Promise.all(instances.map(stopFeedd)).finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
	};
	process.on('SIGINT', () => onSignal('SIGINT'));
	process.on('SIGTERM', () => onSignal('SIGTERM'));

	try {
		fs.mkdirSync(ARTIFACTS, { recursive: true });
		browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
		env.golden = await startFeedd('golden', 'golden');
		env.scroll = await startFeedd('scroll', 'scroll');
	} catch (e) {
		console.error(`browser: setup failed: ${e && e.stack || e}`);
		failed = 1;
	}
	if (failed === 0) {
		for (const t of selected) {
			const t0 = Date.now();
			try {
				await t.fn();
				passed++;
				console.log(`ok    ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
			} catch (e) {
				if (stopping)
					break;
				failed++;
				console.log(`FAIL  ${t.name}\n      ${String(e instanceof TestFailure ? e.message : e.stack || e)
					.replace(/\n/g, '\n      ')}`);
			}
		}
	}
	if (browser)
		await browser.close().catch(() => {});
	for (const inst of instances)
		await stopFeedd(inst);
	/* A sanitizer report from any feedd is a failure of its own. */
	const reports = instances.filter((i) => SANITIZER_MARKERS.some((m) => i.logs().includes(m)));
	if (reports.length) {
		failed++;
		console.log(`FAIL  feedd stopped without sanitizer reports: ${reports.map((i) => i.name).join(', ')}`);
		for (const i of reports)
			console.log(tail(i.logs(), 60));
	} else if (instances.length && browser && env.scroll) {
		passed++;
		console.log('ok    feedd stopped without sanitizer reports');
	}
	for (const i of instances) {
		try {
			fs.copyFileSync(path.join(i.dir, 'error.log'), path.join(ARTIFACTS, `feedd-${i.name}.log`));
		} catch (e) {
			/* no log */
		}
	}
	console.log(`${passed} passed, ${failed} failed`);
	process.exit(failed ? 1 : 0);
}

main();
