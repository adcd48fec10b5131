// Shared pieces of check.mjs: a static file server on 127.0.0.1, the headless browser with every
// request off this machine blocked, and a page wrapper that turns the viewers' ways of failing
// (page errors, alert(), error dialogs) into exceptions.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export class CheckError extends Error {}

/** Throws a CheckError with `message` unless `condition`. */
export function ensure(condition, message) {
  if (!condition) throw new CheckError(message);
}

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/plain; charset=utf-8',
};

/**
 * Serves `root` at `/` and each of `files` ({urlName: localPath}) at `/files/urlName`, on
 * 127.0.0.1 and a free port. Resolves to {url, close, requests}.
 */
export async function serve(root, files) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const pathname = decodeURIComponent(url.pathname);
    requests.push(pathname);
    let file;
    if (pathname.startsWith('/files/')) {
      file = files[pathname.slice('/files/'.length)];
    } else {
      const candidate = path.resolve(root, '.' + (pathname.endsWith('/') ? pathname + 'index.html' : pathname));
      if (candidate.startsWith(path.resolve(root) + path.sep)) file = candidate;
    }
    if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
      'access-control-allow-origin': '*',
      'cache-control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    // The browser keeps connections alive: end them, or close() waits for their idle timeout.
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

/** The flags of shared/VIEWERS.md: offline, no GPU, WebGL through SwiftShader. */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/**
 * Launches Chromium with a fresh profile directory (deleted by the returned close()). Resolves
 * to {context, blocked, close}: `blocked` collects every URL refused for not being 127.0.0.1.
 */
export async function launch(executablePath, userDataDir) {
  fs.rmSync(userDataDir, { recursive: true, force: true });
  fs.mkdirSync(userDataDir, { recursive: true });
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1600, height: 900 },
    // Service workers fetch outside page routing; Perfetto's would also cache between runs.
    serviceWorkers: 'block',
    timeout: 60_000,
  });
  const blocked = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || url.hostname === '127.0.0.1') {
      return route.continue();
    }
    blocked.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  return {
    context,
    blocked,
    close: async () => {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Opens a page that records what went wrong: uncaught page errors, alert()/confirm() dialogs
 * (dismissed), console errors and warnings (`log.console`); `log.messages` keeps every console
 * message, of any type. `assertNoFailures()` throws on the fatal ones.
 */
export async function watchedPage(context, label) {
  const page = await context.newPage();
  const log = { errors: [], dialogs: [], console: [], messages: [] };
  page.on('pageerror', (e) => log.errors.push(String(e && e.stack ? e.stack : e)));
  page.on('dialog', (d) => {
    log.dialogs.push(`${d.type()}: ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  page.on('console', (m) => {
    log.messages.push(`${m.type()}: ${m.text()}`);
    if (m.type() === 'error' || m.type() === 'warning') log.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on('popup', (p) => {
    p.on('pageerror', (e) => log.errors.push(`popup: ${e}`));
    p.on('dialog', (d) => {
      log.dialogs.push(`popup ${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
  });
  page.setDefaultTimeout(30_000);
  return {
    page,
    log,
    /** Throws if the page raised an error or an alert so far. */
    assertNoFailures() {
      ensure(log.dialogs.length === 0, `${label}: the page raised a dialog: ${log.dialogs.join(' | ')}`);
      ensure(log.errors.length === 0, `${label}: uncaught error in the page: ${log.errors.join('\n')}`);
    },
  };
}

/** Waits for `predicate` (run in the page) to be truthy, with a message that says what for. */
export async function waitFor(page, what, predicate, arg, timeout = 30_000) {
  try {
    return await page.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new CheckError(`timed out after ${timeout / 1000} s waiting for ${what}: ${e.message.split('\n')[0]}`);
  }
}
