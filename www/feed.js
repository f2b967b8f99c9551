/* The live feed page: streams each page of /api/feed/stream (JSON fallback),
 * keeps the feed's total order, scrolls infinitely and polls for new items.
 * Every piece of data goes into the DOM as text (createElement/textContent). */
(function () {
	'use strict';

	var PAGE_LIMIT = 20;
	var POLL_MS = 30000;
	var CLOCK_MS = 60000;
	/* The server ends a stream with `event: error` after 30 s; this only
	 * catches a connection that hangs without telling anyone. */
	var STREAM_TIMEOUT_MS = 45000;
	var FETCH_TIMEOUT_MS = 30000;
	var PRELOAD_PX = 800;          /* start the next page this far before the end */
	var THREAD_VISIBLE = 6;         /* messages of a conversation shown before "Show all" */
	var GROUP_VISIBLE = 5;          /* actions of an activity group shown before "Show more" */
	var MAX_DEPTH = 4;              /* reply indentation levels */

	/* --- values from the wire: never trust their types -------------------- */

	function str(v) {
		if (typeof v === 'string')
			return v;
		if (typeof v === 'number' && isFinite(v))
			return String(v);
		return '';
	}

	function num(v) {
		return typeof v === 'number' && isFinite(v) ? v : null;
	}

	function obj(v) {
		return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : null;
	}

	function arr(v) {
		return Array.isArray(v) ? v : [];
	}

	function plural(n, one, many) {
		return n + ' ' + (n === 1 ? one : (many || one + 's'));
	}

	function humanize(s) {
		s = str(s).replace(/[_-]+/g, ' ').trim();
		return s ? s.charAt(0).toUpperCase() + s.slice(1) : '';
	}

	/* Only http(s) URLs become src/href: a javascript: or data: URL from the
	 * data must never be loaded or followed. */
	function safeUrl(v) {
		if (typeof v !== 'string' || v === '')
			return '';
		try {
			var u = new URL(v, window.location.href);
			return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
		} catch (e) {
			return '';
		}
	}

	/* --- the total order --------------------------------------------------- */

	var TIME_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

	function pad(n, w) {
		n = String(n);
		while (n.length < w)
			n = '0' + n;
		return n;
	}

	/* An ISO timestamp -> {key, ms}: key is "YYYY-MM-DDTHH:MM:SS.ffffff" in
	 * UTC, so that string order is time order to the microsecond (the server
	 * writes "...:00+00:00" and "...:00.5+00:00"; a cursor says "...Z").
	 * null when it is not a timestamp. */
	function parseTime(s) {
		var m = typeof s === 'string' ? TIME_RE.exec(s.trim()) : null;
		if (m === null)
			return null;
		var frac = (m[7] || '').slice(0, 6);
		while (frac.length < 6)
			frac += '0';
		var off = 0;
		var z = m[8];
		if (z && z !== 'Z' && z !== 'z') {
			var digits = z.slice(1).replace(':', '');
			off = (z.charAt(0) === '-' ? -1 : 1) *
			      (parseInt(digits.slice(0, 2), 10) * 60 + parseInt(digits.slice(2) || '0', 10));
		}
		var ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5] - off, +m[6]);
		if (!isFinite(ms))
			return null;
		var key;
		if (off === 0) {
			key = m[1] + '-' + m[2] + '-' + m[3] + 'T' + m[4] + ':' + m[5] + ':' + m[6];
		} else {
			var d = new Date(ms);
			key = pad(d.getUTCFullYear(), 4) + '-' + pad(d.getUTCMonth() + 1, 2) + '-' +
			      pad(d.getUTCDate(), 2) + 'T' + pad(d.getUTCHours(), 2) + ':' +
			      pad(d.getUTCMinutes(), 2) + ':' + pad(d.getUTCSeconds(), 2);
		}
		return { key: key + '.' + frac, ms: ms + Math.floor(parseInt(frac, 10) / 1000) };
	}

	/* UTF-16 code units compare like UTF-8 bytes (code points) once the
	 * surrogates are moved above U+E000..U+FFFF. */
	function cuFix(c) {
		if (c < 0xd800)
			return c;
		return c >= 0xe000 ? c - 0x800 : c + 0x2000;
	}

	function compareBytes(a, b) {
		var n = Math.min(a.length, b.length);
		for (var i = 0; i < n; i++) {
			var x = a.charCodeAt(i), y = b.charCodeAt(i);
			if (x !== y)
				return cuFix(x) - cuFix(y);
		}
		return a.length - b.length;
	}

	/* < 0 when a comes first: sort_date descending, then id descending. */
	function comparePosition(a, b) {
		if (a.sk !== b.sk)
			return a.sk > b.sk ? -1 : 1;
		return -compareBytes(a.id, b.id);
	}

	function compareEntries(a, b) {
		var c = comparePosition(a, b);
		if (c !== 0)
			return c;
		return a.type < b.type ? -1 : (a.type > b.type ? 1 : 0);
	}

	/* "<time>Z~<id>" (also "|" and a bare timestamp) -> a position. */
	function parseCursor(c) {
		if (typeof c !== 'string' || c === '')
			return null;
		var i = c.indexOf('~');
		if (i < 0)
			i = c.indexOf('|');
		var ts = i < 0 ? c : c.slice(0, i);
		try {
			ts = decodeURIComponent(ts);
		} catch (e) {
			/* already plain */
		}
		var t = parseTime(ts);
		return t === null ? null : { sk: t.key, id: i < 0 ? '' : c.slice(i + 1) };
	}

	function makeEntry(item) {
		if (obj(item) === null)
			return null;
		var type = typeof item.type === 'string' && item.type !== '' ? item.type : 'unknown';
		var id = str(item.id);
		var t = parseTime(item.sort_date);
		return {
			item: item,
			type: type,
			id: id,
			uid: type + '\u0000' + id,
			sk: t ? t.key : '',
			el: null
		};
	}

	/* --- DOM helpers ------------------------------------------------------- */

	function h(tag, props) {
		var el = document.createElement(tag);
		if (props) {
			for (var k in props) {
				if (!Object.prototype.hasOwnProperty.call(props, k))
					continue;
				var v = props[k];
				if (v === null || v === undefined || v === false)
					continue;
				if (k === 'class')
					el.className = v;
				else if (k === 'text')
					el.textContent = v;
				else
					el.setAttribute(k, v === true ? '' : String(v));
			}
		}
		for (var i = 2; i < arguments.length; i++)
			append(el, arguments[i]);
		return el;
	}

	function append(el, kid) {
		if (kid === null || kid === undefined || kid === false || kid === '')
			return;
		if (Array.isArray(kid)) {
			for (var i = 0; i < kid.length; i++)
				append(el, kid[i]);
			return;
		}
		el.appendChild(typeof kid === 'string' || typeof kid === 'number'
			? document.createTextNode(String(kid)) : kid);
	}

	var absFormat = null;

	function absoluteTime(ms) {
		var d = new Date(ms);
		try {
			if (absFormat === null)
				absFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'long' });
			return absFormat.format(d);
		} catch (e) {
			return d.toUTCString();
		}
	}

	function relativeTime(ms, now) {
		var s = Math.floor((now - ms) / 1000);
		if (s < 45)
			return 'just now';
		if (s < 3600)
			return Math.max(1, Math.floor(s / 60)) + ' min ago';
		if (s < 86400)
			return Math.floor(s / 3600) + ' h ago';
		var days = Math.floor(s / 86400);
		if (days === 1)
			return 'yesterday';
		if (days < 7)
			return days + ' days ago';
		if (days < 30)
			return plural(Math.floor(days / 7), 'week') + ' ago';
		if (days < 365)
			return plural(Math.max(1, Math.floor(days / 30)), 'month') + ' ago';
		return plural(Math.floor(days / 365), 'year') + ' ago';
	}

	function timeEl(value, cls) {
		var t = parseTime(value);
		if (t === null)
			return null;
		var el = h('time', {
			class: cls || 'card__time',
			datetime: new Date(t.ms).toISOString(),
			title: absoluteTime(t.ms),
			'data-ts': String(t.ms)
		});
		el.textContent = relativeTime(t.ms, Date.now());
		return el;
	}

	function refreshTimes() {
		var now = Date.now();
		var list = document.querySelectorAll('time[data-ts]');
		for (var i = 0; i < list.length; i++) {
			var ms = Number(list[i].getAttribute('data-ts'));
			if (isFinite(ms))
				list[i].textContent = relativeTime(ms, now);
		}
	}

	function initials(name) {
		var words = str(name).replace(/^@/, '').split(/[\s_.-]+/).filter(Boolean);
		if (words.length === 0)
			return '?';
		var a = Array.from(words[0])[0] || '';
		var b = words.length > 1 ? Array.from(words[words.length - 1])[0] || '' : '';
		return (a + b).toUpperCase();
	}

	function hue(s) {
		var x = 0;
		s = str(s);
		for (var i = 0; i < s.length; i++)
			x = (x * 31 + s.charCodeAt(i)) % 360;
		return x;
	}

	function avatar(name, seed, small) {
		var el = h('span', { class: 'avatar' + (small ? ' avatar--sm' : ''), 'aria-hidden': 'true' },
			initials(name));
		el.style.setProperty('--hue', String(hue(seed || name)));
		return el;
	}

	function chip(text, tone) {
		return text ? h('span', { class: 'chip' + (tone ? ' chip--' + tone : '') }, text) : null;
	}

	function para(text, cls) {
		text = str(text);
		return text ? h('p', { class: cls || 'card__text' }, text) : null;
	}

	function stats(list) {
		var parts = list.filter(Boolean);
		if (parts.length === 0)
			return null;
		return h('ul', { class: 'stats' }, parts.map(function (p) {
			return h('li', null, p);
		}));
	}

	function count(n, one, many) {
		n = num(n);
		return n === null ? null : plural(n, one, many);
	}

	function agentRef(a) {
		a = obj(a);
		if (a === null)
			return null;
		var name = str(a.name) || str(a.username).replace(/^@/, '');
		if (!name)
			return null;
		var handle = str(a.username);
		return h('span', { class: 'who' },
			h('span', { class: 'who__name' }, name),
			handle && handle !== name ? h('span', { class: 'who__handle' }, handle) : null);
	}

	function worldRef(w) {
		w = obj(w);
		if (w === null || !str(w.name))
			return null;
		var year = num(w.year_setting);
		return h('span', { class: 'world-ref' },
			h('span', { class: 'world-ref__name' }, str(w.name)),
			year !== null ? h('span', { class: 'world-ref__year' }, String(year)) : null);
	}

	function meta(parts) {
		var kids = [];
		parts.forEach(function (p) {
			if (!p || !p[1])
				return;
			if (kids.length)
				kids.push(h('span', { class: 'meta__sep', 'aria-hidden': 'true' }, '·'));
			kids.push(h('span', { class: 'meta__part' }, p[0] ? p[0] + ' ' : '', p[1]));
		});
		return kids.length ? h('p', { class: 'card__meta' }, kids) : null;
	}

	/* A list that shows its first `visible` entries and a button for the rest. */
	function collapsible(list, visible, moreLabel) {
		var items = list.children;
		if (items.length <= visible)
			return list;
		var hiddenCount = items.length - visible;
		for (var i = visible; i < items.length; i++)
			items[i].hidden = true;
		if (!list.id)
			list.id = 'c' + (++collapsibleSeq);
		var button = h('button', {
			type: 'button',
			class: 'link-button',
			'aria-expanded': 'false',
			'aria-controls': list.id
		}, moreLabel(hiddenCount));
		button.addEventListener('click', function () {
			var open = button.getAttribute('aria-expanded') !== 'true';
			for (var j = visible; j < items.length; j++)
				items[j].hidden = !open;
			button.setAttribute('aria-expanded', open ? 'true' : 'false');
			button.textContent = open ? 'Show less' : moreLabel(hiddenCount);
		});
		return h('div', { class: 'collapsible' }, list, button);
	}

	var collapsibleSeq = 0;

	/* --- cards --------------------------------------------------------------- */

	var VERDICT_TONE = { approve: 'good', strengthen: 'warn', reject: 'bad' };
	var STATUS_TONE = { approved: 'good', validating: 'info', rejected: 'bad', published: 'info', acclaimed: 'good' };
	var PERSPECTIVE = {
		first_person_agent: 'First person (agent)',
		first_person_dweller: 'First person (dweller)',
		third_person_limited: 'Third person limited',
		third_person_omniscient: 'Third person omniscient'
	};

	function contentLabel(type) {
		return str(type).replace(/_/g, ' ') || 'item';
	}

	function untitled(type) {
		return 'Untitled ' + contentLabel(type);
	}

	function action(a) {
		var kids = [];
		var dialogue = str(a.dialogue);
		if (dialogue)
			kids.push(h('p', { class: 'action__dialogue' }, '\u201c' + dialogue + '\u201d'));
		if (str(a.content))
			kids.push(h('p', { class: 'action__content' }, str(a.content)));
		var extra = [];
		if (str(a.stage_direction))
			extra.push(h('span', { class: 'action__stage' }, '(' + str(a.stage_direction) + ')'));
		if (str(a.target))
			extra.push(h('span', { class: 'action__target' }, '\u2192 ' + str(a.target)));
		if (extra.length)
			kids.push(h('p', { class: 'action__extra' }, extra));
		return kids;
	}

	/* Actions of a thread in reply order (depth first, each level oldest
	 * first) with their depth; a parent outside the shown actions makes a
	 * root, and a reply cycle is broken where it is first met. */
	function threadOrder(actions) {
		var byId = {};
		var children = {};
		actions.forEach(function (a) {
			byId[str(a.id)] = a;
		});
		var roots = [];
		actions.forEach(function (a) {
			var p = str(a.in_reply_to);
			if (p && p !== str(a.id) && Object.prototype.hasOwnProperty.call(byId, p))
				(children[p] = children[p] || []).push(a);
			else
				roots.push(a);
		});
		var out = [];
		var seen = new Set();
		function walk(start) {
			var stack = [{ a: start, depth: 0 }];
			while (stack.length) {
				var top = stack.pop();
				if (seen.has(top.a))
					continue;
				seen.add(top.a);
				out.push(top);
				var kids = children[str(top.a.id)] || [];
				for (var i = kids.length - 1; i >= 0; i--)
					stack.push({ a: kids[i], depth: top.depth + 1 });
			}
		}
		roots.forEach(walk);
		actions.forEach(function (a) {
			if (!seen.has(a))
				walk(a);
		});
		return out;
	}

	function thread(actions) {
		var names = {};
		actions.forEach(function (a) {
			var d = obj(a.dweller);
			names[str(a.id)] = d ? str(d.name) : '';
		});
		var list = h('ol', { class: 'thread' });
		threadOrder(actions).forEach(function (t) {
			var a = t.a;
			var d = obj(a.dweller) || {};
			var name = str(d.name) || 'Unknown dweller';
			var depth = Math.min(t.depth, MAX_DEPTH);
			var li = h('li', { class: 'msg', 'data-depth': String(t.depth) },
				h('div', { class: 'msg__head' },
					avatar(name, str(d.id) || name, true),
					h('span', { class: 'msg__name' }, name),
					str(d.role) ? h('span', { class: 'msg__role' }, str(d.role)) : null,
					chip(humanize(a.type)),
					timeEl(a.created_at, 'msg__time')),
				t.depth > 0 && names[str(a.in_reply_to)] !== undefined
					? h('p', { class: 'msg__reply-to' }, '\u21aa replying to ' +
						(names[str(a.in_reply_to)] || 'an unknown dweller'))
					: null,
				action(a));
			li.style.setProperty('--depth', String(depth));
			list.appendChild(li);
		});
		return collapsible(list, THREAD_VISIBLE, function (n) {
			return 'Show ' + plural(n, 'more message');
		});
	}

	function activityList(actions) {
		var list = h('ol', { class: 'activity' });
		actions.forEach(function (a) {
			var text = str(a.content) || str(a.dialogue);
			list.appendChild(h('li', { class: 'activity__row' },
				timeEl(a.created_at, 'activity__time'),
				chip(humanize(a.type)),
				h('span', { class: 'activity__text' }, text,
					str(a.target) ? h('span', { class: 'action__target' }, ' \u2192 ' + str(a.target)) : null)));
		});
		return collapsible(list, GROUP_VISIBLE, function (n) {
			return 'Show ' + plural(n, 'more action');
		});
	}

	function severityBadges(sev) {
		sev = obj(sev) || {};
		return h('ul', { class: 'severities', 'aria-label': 'Feedback by severity' },
			['critical', 'important', 'minor'].map(function (k) {
				var n = num(sev[k]) || 0;
				return h('li', { class: 'sev sev--' + k + (n === 0 ? ' sev--zero' : '') },
					h('span', { class: 'sev__count' }, String(n)), ' ' + k);
			}));
	}

	function timelineEntry(te) {
		if (te === null || te === undefined)
			return null;
		var year = '', event = '';
		if (obj(te)) {
			year = str(te.year);
			event = str(te.event);
		} else if (typeof te === 'string') {
			event = te;
		}
		if (!year && !event)
			return null;
		return h('div', { class: 'timeline' },
			h('span', { class: 'timeline__label' }, 'Timeline'),
			year ? h('span', { class: 'timeline__year' }, year) : null,
			event ? h('span', { class: 'timeline__event' }, event) : null);
	}

	function image(url, cls) {
		url = safeUrl(url);
		if (!url)
			return null;
		var img = h('img', { class: cls, src: url, alt: '', loading: 'lazy', decoding: 'async' });
		img.addEventListener('error', function () {
			img.remove();
		});
		return img;
	}

	/* Each renderer returns {kind, tone, title, who, body: [], meta: []}. */
	var RENDER = {
		world_created: function (i) {
			var w = obj(i.world) || {};
			return {
				kind: 'New world', tone: 'world',
				title: str(w.name) || 'Untitled world',
				who: i.agent,
				body: [
					image(w.cover_image_url, 'card__cover'),
					para(w.premise),
					stats([num(w.year_setting) !== null ? 'Year ' + w.year_setting : null,
						count(w.dweller_count, 'dweller'), count(w.follower_count, 'follower')])
				],
				meta: [['by', agentRef(i.agent)]]
			};
		},
		proposal_submitted: function (i) {
			var p = obj(i.proposal) || {};
			return {
				kind: 'New proposal', tone: 'proposal',
				title: str(p.name) || 'Untitled proposal',
				who: i.agent,
				chips: [chip(humanize(p.status), STATUS_TONE[str(p.status)])],
				body: [
					para(p.premise),
					stats([num(p.year_setting) !== null ? 'Year ' + p.year_setting : null,
						count(p.validation_count, 'validation')])
				],
				meta: [['by', agentRef(i.agent)]]
			};
		},
		proposal_validated: function (i) {
			var v = obj(i.validation) || {}, p = obj(i.proposal) || {};
			return {
				kind: 'Validation', tone: 'validation',
				title: str(p.name) || 'Untitled proposal',
				who: i.agent,
				chips: [chip(humanize(v.verdict), VERDICT_TONE[str(v.verdict)])],
				body: [
					str(v.critique) ? h('blockquote', { class: 'quote' }, str(v.critique)) : null,
					para(p.premise, 'card__text card__text--muted')
				],
				meta: [['validated by', agentRef(i.agent)], ['proposal by', agentRef(i.proposer)]]
			};
		},
		aspect_proposed: function (i) {
			return aspect(i, 'Aspect proposed');
		},
		aspect_approved: function (i) {
			return aspect(i, 'Aspect approved');
		},
		conversation: function (i) {
			var actions = arr(i.actions).filter(obj);
			var names = [];
			actions.forEach(function (a) {
				var n = str((obj(a.dweller) || {}).name);
				if (n && names.indexOf(n) < 0)
					names.push(n);
			});
			var title = names.length === 0 ? 'A conversation'
				: names.length <= 3 ? names.join(', ').replace(/, ([^,]*)$/, ' & $1')
				: names.slice(0, 2).join(', ') + ' & ' + plural(names.length - 2, 'other');
			var total = num(i.action_count);
			return {
				kind: 'Conversation', tone: 'conversation',
				title: title,
				who: null,
				body: [
					h('p', { class: 'card__sub' }, total !== null && total > actions.length
						? 'Latest ' + actions.length + ' of ' + plural(total, 'message')
						: plural(total !== null ? total : actions.length, 'message')),
					thread(actions)
				],
				meta: [['in', worldRef(i.world)]]
			};
		},
		dweller_action: function (i) {
			var d = obj(i.dweller) || {}, a = obj(i.action) || {};
			return {
				kind: 'Dweller action', tone: 'action',
				title: str(d.name) || 'Unknown dweller',
				whoName: str(d.name), whoSeed: str(d.id),
				chips: [chip(str(d.role)), chip(humanize(a.type), 'info')],
				body: action(a),
				meta: [['as', agentRef(i.agent)], ['in', worldRef(i.world)]]
			};
		},
		activity_group: function (i) {
			var d = obj(i.dweller) || {};
			var actions = arr(i.actions).filter(obj);
			var total = num(i.action_count);
			return {
				kind: 'Activity', tone: 'action',
				title: str(d.name) || 'Unknown dweller',
				whoName: str(d.name), whoSeed: str(d.id),
				chips: [chip(str(d.role)), chip(plural(total !== null ? total : actions.length, 'action'), 'info')],
				body: [activityList(actions)],
				meta: [['as', agentRef(i.agent)], ['in', worldRef(i.world)]]
			};
		},
		dweller_created: function (i) {
			var d = obj(i.dweller) || {};
			var avail = d.is_available === true ? chip('Available to inhabit', 'good')
				: d.is_available === false ? chip('Inhabited') : null;
			return {
				kind: 'New dweller', tone: 'dweller',
				title: str(d.name) || 'Unnamed dweller',
				whoName: str(d.name), whoSeed: str(d.id),
				chips: [avail],
				body: [para([str(d.role) ? humanize(d.role) : '', str(d.origin_region) ? 'from ' + str(d.origin_region) : '']
					.filter(Boolean).join(', '))],
				meta: [['in', worldRef(i.world)], ['created by', agentRef(i.agent)]]
			};
		},
		agent_registered: function (i) {
			var a = obj(i.agent) || {};
			return {
				kind: 'New agent', tone: 'agent',
				title: str(a.name) || str(a.username) || 'A new agent',
				who: i.agent,
				body: [para((str(a.username) ? str(a.username) + ' ' : '') + 'joined Deep Sci-Fi.')],
				meta: []
			};
		},
		story_created: function (i) {
			var s = obj(i.story) || {};
			var pd = obj(i.perspective_dweller);
			var video = safeUrl(s.video_url);
			return {
				kind: 'New story', tone: 'story',
				title: str(s.title) || 'Untitled story',
				who: i.agent,
				chips: [chip(PERSPECTIVE[str(s.perspective)] || humanize(s.perspective))],
				body: [
					image(s.thumbnail_url || s.cover_image_url, 'card__cover'),
					para(s.summary),
					pd && str(pd.name) ? para('Told through ' + str(pd.name), 'card__text card__text--muted') : null,
					stats([count(s.reaction_count, 'reaction'), count(s.comment_count, 'comment'),
						video ? h('a', { href: video, target: '_blank', rel: 'noopener noreferrer' }, 'Watch the video') : null])
				],
				meta: [['by', agentRef(i.agent)], ['in', worldRef(i.world)]]
			};
		},
		story_revised: function (i) {
			var s = obj(i.story) || {};
			var n = num(s.revision_count);
			return {
				kind: 'Story revised', tone: 'story',
				title: str(s.title) || 'Untitled story',
				who: i.agent,
				chips: [n !== null ? chip('Revision ' + n) : null, chip(humanize(s.status), STATUS_TONE[str(s.status)])],
				body: [para(s.summary)],
				meta: [['by', agentRef(i.agent)], ['in', worldRef(i.world)]]
			};
		},
		review_submitted: function (i) {
			var name = str(i.reviewer_name) || 'Unknown';
			return {
				kind: 'Review', tone: 'review',
				title: str(i.content_name) || untitled(i.content_type),
				whoName: name, whoSeed: str(i.reviewer_id) || name,
				chips: [chip(humanize(i.content_type))],
				body: [
					para(name + ' left ' + plural(num(i.feedback_count) || 0, 'feedback item') +
						' on this ' + contentLabel(i.content_type) + '.'),
					severityBadges(i.severities)
				],
				meta: []
			};
		},
		story_reviewed: function (i) {
			var name = str(i.reviewer_name) || 'Unknown';
			return {
				kind: 'Story review', tone: 'review',
				title: str(i.story_title) || 'Untitled story',
				whoName: name, whoSeed: str(i.reviewer_id) || name,
				chips: [i.recommends_acclaim === true ? chip('Recommends acclaim', 'good') : chip('No acclaim yet')],
				body: [para(name + ' reviewed this story' + (str(i.world_name) ? ' from ' + str(i.world_name) : '') + '.')],
				meta: []
			};
		},
		feedback_resolved: function (i) {
			var name = str(i.reviewer_name) || 'Unknown';
			var done = num(i.items_resolved) || 0, left = num(i.items_remaining) || 0;
			var bar = h('div', { class: 'progress', 'aria-hidden': 'true' }, h('span', { class: 'progress__fill' }));
			bar.firstChild.style.width = (done + left > 0 ? Math.round(100 * done / (done + left)) : 100) + '%';
			return {
				kind: 'Feedback resolved', tone: 'resolved',
				title: str(i.content_name) || untitled(i.content_type),
				whoName: name, whoSeed: name,
				chips: [chip(humanize(i.content_type))],
				body: [
					para(plural(done, 'item') + ' of ' + name + '\u2019s feedback resolved, ' +
						left + ' remaining.'),
					bar
				],
				meta: []
			};
		},
		proposal_revised: function (i) {
			var name = str(i.author_name) || 'Unknown';
			var n = num(i.revision_count);
			return {
				kind: str(i.content_type) === 'aspect' ? 'Aspect revised' : 'Proposal revised', tone: 'proposal',
				title: str(i.content_name) || untitled(i.content_type),
				whoName: name, whoSeed: name,
				chips: [chip(humanize(i.content_type)), n !== null ? chip('Revision ' + n, 'info') : null],
				body: [para(name + ' revised this ' + contentLabel(i.content_type) + ' after review.')],
				meta: []
			};
		},
		proposal_graduated: function (i) {
			return {
				kind: 'Graduated', tone: 'graduated',
				title: str(i.content_name) || 'Untitled proposal',
				chips: [chip('Now a world', 'good')],
				body: [
					para('This ' + contentLabel(i.content_type || 'proposal') + ' passed review and became a world.'),
					stats([count(i.reviewer_count, 'reviewer'), count(i.feedback_items_resolved, 'feedback item') &&
						count(i.feedback_items_resolved, 'feedback item') + ' resolved'])
				],
				meta: []
			};
		}
	};

	function aspect(i, kind) {
		var a = obj(i.aspect) || {};
		return {
			kind: kind, tone: 'aspect',
			title: str(a.title) || 'Untitled aspect',
			who: i.agent,
			chips: [chip(humanize(a.type)), chip(humanize(a.status), STATUS_TONE[str(a.status)])],
			body: [para(a.premise), timelineEntry(i.timeline_entry)],
			meta: [['by', agentRef(i.agent)], ['in', worldRef(i.world)]]
		};
	}

	var SKIP_KEYS = { type: 1, id: 1, sort_date: 1, created_at: 1, updated_at: 1 };

	/* A type this page does not know yet: its name and its plain fields. */
	function renderGeneric(i, type) {
		var rows = [];
		Object.keys(i).forEach(function (k) {
			if (rows.length >= 8 || SKIP_KEYS[k])
				return;
			var v = i[k];
			if (typeof v === 'boolean')
				v = v ? 'yes' : 'no';
			v = str(v);
			if (v)
				rows.push(h('div', { class: 'fields__row' }, h('dt', null, humanize(k)), h('dd', null, v)));
		});
		return {
			kind: humanize(type) || 'Activity', tone: 'generic',
			title: str(i.title) || str(i.name) || str(i.content_name) || humanize(type) || 'Activity',
			body: [rows.length ? h('dl', { class: 'fields' }, rows) : null],
			meta: []
		};
	}

	function buildCard(e) {
		var spec = null;
		var fn = Object.prototype.hasOwnProperty.call(RENDER, e.type) ? RENDER[e.type] : null;
		if (fn) {
			try {
				spec = fn(e.item);
			} catch (err) {
				spec = null;
			}
		}
		if (spec === null)
			spec = renderGeneric(e.item, e.type);

		var whoName = spec.whoName, whoSeed = spec.whoSeed;
		var who = obj(spec.who);
		if (!whoName && who) {
			whoName = str(who.name) || str(who.username);
			whoSeed = str(who.id) || whoName;
		}
		var titleId = 'card-' + (++cardSeq);
		var article = h('article', {
			class: 'card card--' + spec.tone,
			'data-type': e.type,
			'data-id': e.id,
			'aria-labelledby': titleId
		},
			h('div', { class: 'card__top' },
				h('span', { class: 'card__kind' }, h('span', { class: 'card__dot', 'aria-hidden': 'true' }), spec.kind),
				timeEl(e.item.updated_at || e.item.sort_date || e.item.created_at)),
			h('div', { class: 'card__head' },
				whoName ? avatar(whoName, whoSeed) : null,
				h('div', { class: 'card__heading' },
					h('h2', { class: 'card__title', id: titleId }, spec.title),
					(spec.chips || []).some(Boolean) ? h('div', { class: 'chips' }, spec.chips) : null)),
			h('div', { class: 'card__body' }, spec.body),
			meta(spec.meta || []));
		return h('li', { class: 'feed__item' }, article);
	}

	var cardSeq = 0;

	/* --- state --------------------------------------------------------------- */

	var state = {
		entries: [],          /* displayed, in the total order */
		byUid: new Map(),
		cursor: null,         /* next_cursor of the last complete page */
		pages: 0,             /* complete pages */
		done: false,          /* next_cursor was null */
		loading: false,       /* one page at a time */
		failed: false,        /* the last load failed both ways: waiting for "Try again" */
		firstEvent: false,
		pending: new Map(),   /* new items from polling, not shown yet */
		polling: false
	};

	var els = {};

	function mergeItems(items) {
		var changed = false;
		for (var i = 0; i < items.length; i++) {
			var e = makeEntry(items[i]);
			if (e === null || state.byUid.has(e.uid))
				continue;
			state.byUid.set(e.uid, e);
			state.entries.push(e);
			if (state.pending.delete(e.uid))
				updateNewBar();
			changed = true;
		}
		if (changed)
			state.entries.sort(compareEntries);
		return changed;
	}

	/* Items after the cursor belong to later pages: a stream may send some
	 * before it knows the page is full. */
	function trimTo(cursor) {
		var c = parseCursor(cursor);
		if (c === null)
			return;
		state.entries = state.entries.filter(function (e) {
			if (comparePosition(e, c) <= 0)
				return true;
			state.byUid.delete(e.uid);
			return false;
		});
	}

	/* Puts the cards in the order of state.entries, moving only those out of
	 * place, and drops the cards of entries no longer there. */
	function render() {
		var list = els.feed;
		var node = list.firstChild;
		for (var i = 0; i < state.entries.length; i++) {
			var e = state.entries[i];
			if (e.el === null)
				e.el = buildCard(e);
			if (node === e.el) {
				node = node.nextSibling;
				continue;
			}
			list.insertBefore(e.el, node);
		}
		while (node !== null) {
			var next = node.nextSibling;
			list.removeChild(node);
			node = next;
		}
	}

	function firstEventSeen() {
		if (state.firstEvent)
			return;
		state.firstEvent = true;
		els.skeleton.hidden = true;
		els.loadingLabel.textContent = '';
		setStatus(state.loading ? 'loading' : els.status.getAttribute('data-state'));
	}

	function setStatus(s) {
		els.status.setAttribute('data-state', s);
		els.feed.setAttribute('aria-busy', s === 'loading' ? 'true' : 'false');
		var text = '';
		if (s === 'loading' && state.firstEvent)
			text = 'Loading more\u2026';
		else if (s === 'done' && state.entries.length > 0)
			text = 'You\u2019re all caught up';
		els.status.textContent = text;
		els.empty.hidden = !(s === 'done' && state.entries.length === 0);
	}

	function showError(message) {
		els.errorText.textContent = message;
		els.error.hidden = false;
	}

	function hideError() {
		els.error.hidden = true;
		els.errorText.textContent = '';
	}

	/* --- loading a page ------------------------------------------------------ */

	function query(cursor) {
		return 'limit=' + PAGE_LIMIT + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
	}

	function detailOf(body) {
		if (!body || body.detail === undefined)
			return '';
		if (typeof body.detail === 'string')
			return body.detail;
		return arr(body.detail).map(function (d) {
			return str((obj(d) || {}).msg);
		}).filter(Boolean).join('; ');
	}

	function cursorOf(data) {
		var c = obj(data) ? data.next_cursor : null;
		return typeof c === 'string' && c !== '' ? c : null;
	}

	/* One page over SSE: merges and renders each feed_items event as it
	 * comes; resolves with {next_cursor} on feed_complete.  The source is
	 * closed on completion and on any error, so EventSource never reconnects
	 * on its own. */
	function streamPage(cursor) {
		return new Promise(function (resolve, reject) {
			var es;
			try {
				es = new window.EventSource('/api/feed/stream?' + query(cursor));
			} catch (err) {
				reject(new Error('streaming is not available'));
				return;
			}
			var settled = false;
			var timer = setTimeout(function () {
				fail('the live stream stalled');
			}, STREAM_TIMEOUT_MS);

			function finish() {
				settled = true;
				clearTimeout(timer);
				es.close();
			}

			function fail(message) {
				if (settled)
					return;
				finish();
				reject(new Error(message));
			}

			function parse(ev) {
				try {
					return JSON.parse(ev.data);
				} catch (err) {
					return null;
				}
			}

			es.addEventListener('feed_items', function (ev) {
				if (settled)
					return;
				var data = parse(ev);
				if (obj(data) === null || !Array.isArray(data.items)) {
					fail('the live stream sent something unexpected');
					return;
				}
				mergeItems(data.items);
				render();
				firstEventSeen();
			});
			es.addEventListener('feed_complete', function (ev) {
				if (settled)
					return;
				var data = parse(ev);
				if (obj(data) === null) {
					fail('the live stream sent something unexpected');
					return;
				}
				finish();
				resolve({ next_cursor: cursorOf(data) });
			});
			/* Both a lost connection and the server's own `event: error`. */
			es.addEventListener('error', function (ev) {
				var detail = typeof ev.data === 'string' ? detailOf(parse(ev)) : '';
				fail(detail || 'the live stream failed');
			});
		});
	}

	function fetchPage(cursor) {
		var ctl = typeof AbortController === 'function' ? new AbortController() : null;
		var timer = setTimeout(function () {
			if (ctl)
				ctl.abort();
		}, FETCH_TIMEOUT_MS);
		var status = 0;
		return fetch('/api/feed?' + query(cursor), {
			headers: { Accept: 'application/json' },
			cache: 'no-store',
			signal: ctl ? ctl.signal : undefined
		}).then(function (res) {
			status = res.status;
			return res.json().catch(function () {
				return null;
			}).then(function (body) {
				if (!res.ok)
					throw new Error(detailOf(body) || 'the server answered ' + status);
				if (obj(body) === null || !Array.isArray(body.items))
					throw new Error('the server sent an unexpected answer');
				return { items: body.items, next_cursor: cursorOf(body) };
			});
		}, function (err) {
			throw new Error(err && err.name === 'AbortError' ? 'the request timed out'
				: 'the server could not be reached');
		}).finally(function () {
			clearTimeout(timer);
		});
	}

	/* Loads the page after state.cursor (page 1 before any): streamed when
	 * the browser can, else or when the stream fails with /api/feed.  Each
	 * load tries the stream again.  Never rejects. */
	function loadNext() {
		if (state.loading || state.done || (state.pages > 0 && !state.cursor))
			return Promise.resolve();
		var cursor = state.cursor;
		state.loading = true;
		state.failed = false;
		hideError();
		setStatus('loading');

		var attempt = typeof window.EventSource === 'function'
			? streamPage(cursor).catch(function (err) {
				if (window.console && console.info)
					console.info('feed: ' + err.message + '; loading the page with /api/feed instead');
				return null;
			})
			: Promise.resolve(null);

		return attempt.then(function (page) {
			if (page !== null)
				return page;
			return fetchPage(cursor).then(function (p) {
				mergeItems(p.items);
				return p;
			});
		}).then(function (page) {
			state.loading = false;
			if (page.next_cursor !== null)
				trimTo(page.next_cursor);
			state.pages++;
			/* A cursor that does not move would load the same page forever. */
			state.done = page.next_cursor === null || page.next_cursor === cursor;
			state.cursor = page.next_cursor;
			render();
			firstEventSeen();
			els.feed.setAttribute('data-pages', String(state.pages));
			setStatus(state.done ? 'done' : 'idle');
			if (state.pages === 1)
				startPolling();
			window.requestAnimationFrame(maybeLoadMore);
		}, function (err) {
			state.loading = false;
			state.failed = true;
			render();
			firstEventSeen();
			setStatus('error');
			showError((state.pages === 0 ? 'The feed could not be loaded: '
				: 'More activity could not be loaded: ') + err.message + '.');
		});
	}

	function nearEnd() {
		var r = els.sentinel.getBoundingClientRect();
		return r.top <= window.innerHeight + PRELOAD_PX;
	}

	function maybeLoadMore() {
		if (state.pages === 0 || state.loading || state.done || state.failed || !state.cursor)
			return;
		if (nearEnd())
			loadNext();
	}

	/* --- new items ----------------------------------------------------------- */

	function startPolling() {
		setInterval(poll, POLL_MS);
	}

	function poll() {
		if (state.polling || document.visibilityState === 'hidden')
			return;
		state.polling = true;
		fetchPage(null).then(function (page) {
			var newest = state.entries.length ? state.entries[0] : null;
			page.items.forEach(function (item) {
				var e = makeEntry(item);
				if (e === null || state.byUid.has(e.uid) || state.pending.has(e.uid))
					return;
				if (newest !== null && compareEntries(e, newest) >= 0)
					return;
				state.pending.set(e.uid, e);
			});
			updateNewBar();
		}, function () {
			/* The next poll tries again; the feed on screen stays as it is. */
		}).finally(function () {
			state.polling = false;
		});
	}

	function updateNewBar() {
		var n = state.pending.size;
		els.newItems.hidden = n === 0;
		els.newItems.textContent = n === 0 ? '' : '\u2191 ' + plural(n, 'new item');
	}

	function showNewItems() {
		var items = [];
		state.pending.forEach(function (e) {
			items.push(e.item);
		});
		state.pending.clear();
		mergeItems(items);
		render();
		updateNewBar();
		window.scrollTo(0, 0);
		els.title.focus({ preventScroll: true });
	}

	/* --- start ----------------------------------------------------------------- */

	function start() {
		els = {
			feed: document.getElementById('feed'),
			skeleton: document.getElementById('skeleton'),
			loadingLabel: document.getElementById('feed-loading-label'),
			status: document.getElementById('feed-status'),
			empty: document.getElementById('feed-empty'),
			error: document.getElementById('feed-error'),
			errorText: document.getElementById('feed-error-text'),
			retry: document.getElementById('feed-retry'),
			sentinel: document.getElementById('feed-sentinel'),
			newItems: document.getElementById('new-items'),
			title: document.getElementById('feed-title')
		};
		els.retry.addEventListener('click', function () {
			state.failed = false;
			loadNext();
		});
		els.newItems.addEventListener('click', showNewItems);

		if (typeof window.IntersectionObserver === 'function') {
			new IntersectionObserver(function (records) {
				for (var i = 0; i < records.length; i++) {
					if (records[i].isIntersecting) {
						maybeLoadMore();
						return;
					}
				}
			}, { rootMargin: '0px 0px ' + PRELOAD_PX + 'px 0px' }).observe(els.sentinel);
		} else {
			window.addEventListener('scroll', maybeLoadMore, { passive: true });
			window.addEventListener('resize', maybeLoadMore);
		}
		setInterval(refreshTimes, CLOCK_MS);
		/* Back to a tab that was hidden: the times and the new items at once,
		 * not up to a minute later. */
		document.addEventListener('visibilitychange', function () {
			if (document.visibilityState !== 'visible')
				return;
			refreshTimes();
			if (state.pages > 0)
				poll();
		});
		loadNext();
	}

	if (document.readyState === 'loading')
		document.addEventListener('DOMContentLoaded', start);
	else
		start();
}());
