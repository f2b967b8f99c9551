// Reads one feedd event stream with the npm `eventsource` package (a
// WHATWG EventSource for Node.js that feedd's authors did not write) and
// prints what it saw as one JSON line:
//   {"open": bool, "events": [{"type", "data", "lastEventId"}...],
//    "end": "complete" | "error-event" | "connection-error" | "timeout",
//    "connectionError": {"message", "code"} | null}
// It stops at feed_complete or at a server-sent `event: error` (closing
// the EventSource, so the client does not reconnect), or after TIMEOUT_MS.
//
//   node check.mjs URL [TIMEOUT_MS]
import { EventSource } from "eventsource";

const url = process.argv[2];
const timeoutMs = Number(process.argv[3] || 20000);
if (!url) {
	console.error("usage: node check.mjs URL [TIMEOUT_MS]");
	process.exit(2);
}

const out = { open: false, events: [], end: null, connectionError: null };
const es = new EventSource(url);
let timer = null;

function finish(reason) {
	if (out.end !== null)
		return;
	out.end = reason;
	es.close();
	clearTimeout(timer);
	process.stdout.write(JSON.stringify(out) + "\n");
}

function record(e) {
	out.events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
}

es.onopen = () => {
	out.open = true;
};
// Events without an event: field would land here; feedd sends none.
es.onmessage = record;
es.addEventListener("feed_items", record);
es.addEventListener("feed_complete", (e) => {
	record(e);
	finish("complete");
});
// The same name serves the server's `event: error` (a MessageEvent with
// data) and the client's own connection failures (no data).
es.addEventListener("error", (e) => {
	if (typeof e.data === "string") {
		record(e);
		finish("error-event");
		return;
	}
	out.connectionError = { message: e.message ?? null, code: e.code ?? null };
	finish("connection-error");
});
timer = setTimeout(() => finish("timeout"), timeoutMs);
