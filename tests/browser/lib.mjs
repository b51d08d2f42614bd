// Shared by the end-to-end test (e2e.mjs) and the timing (timing.mjs): a static server for
// www/dist on 127.0.0.1, Debian's headless Chromium through playwright-core (never a downloaded
// browser), and a driver that loads the demo page and solves a question in both modes.

import { createServer } from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  // instantiateStreaming requires this type.
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.safetensors': 'application/octet-stream',
};

/** Serves the first of `roots` that holds a path on 127.0.0.1 (a free port); resolves to
 * {url, close}. */
export function serve(...roots) {
  roots = roots.map((r) => resolve(r));
  const find = (path) => {
    for (const root of roots) {
      let file = normalize(join(root, path));
      if (!file.startsWith(root)) continue;
      try {
        if (statSync(file).isDirectory()) file = join(file, 'index.html');
        if (statSync(file).isFile()) return file;
      } catch {
        // not under this root
      }
    }
    return null;
  };
  const server = createServer((req, res) => {
    const file = find(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    if (!file) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-store',
    });
    res.end(body);
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => ok({ url: `http://127.0.0.1:${server.address().port}/`, close: () => server.close() })),
  );
}

// The closed network: without these Chromium floods it with refused connections.
const QUIET = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
// WebGPU on a GPU-less machine: Chromium's SwiftShader adapter.
const WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];

/** Launches headless Chromium with WebGPU (SwiftShader) on, or with WebGPU disabled. */
export async function launch({ webgpu }) {
  // Playwright gives every launch a fresh temporary profile (--user-data-dir).
  const args = [...QUIET, ...(webgpu ? WEBGPU : ['--disable-webgpu'])];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args,
    // Playwright adds --disable-gpu to headless runs, which also removes WebGPU.
    ignoreDefaultArgs: webgpu ? ['--disable-gpu'] : [],
  });
  return { browser, close: () => browser.close() };
}

/** A page on `url` whose console errors and page errors are collected. */
export async function open(browser, url, log = () => {}) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1500 } });
  const problems = [];
  page.on('console', (m) => {
    log(`[console.${m.type()}] ${m.text()}`);
    // The page probes optional files (generation_config.json, kava.json): their 404 is logged
    // by the browser itself and is not a problem; any other error is.
    if (m.type() === 'error' && !/status of 404/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(url);
  return { page, problems };
}

/** Waits until the page state is one of `states` (or `error`); returns the state. */
export async function waitState(page, states, timeoutMs) {
  await page.waitForFunction(
    (s) => s.includes(document.body.dataset.state) || document.body.dataset.state === 'error',
    states,
    { timeout: timeoutMs, polling: 100 },
  );
  const state = await page.evaluate(() => document.body.dataset.state);
  if (state === 'error') {
    throw new Error(`the page reports an error: ${await page.evaluate(() => window.kavaDemo.error)}`);
  }
  return state;
}

/** Fills `question`, presses Solve and waits for both answers; returns window.kavaDemo. */
export async function solve(page, question, timeoutMs) {
  await page.fill('#question', question);
  await page.click('#solve');
  await waitState(page, ['solved'], timeoutMs);
  return page.evaluate(() => JSON.parse(JSON.stringify(window.kavaDemo)));
}

/** The stats table as {rowKey: [latentText, cotText, ratioText]}. */
export async function statsTable(page) {
  return page.evaluate(() => {
    const out = {};
    for (const tr of document.querySelectorAll('#stats tbody tr')) {
      out[tr.dataset.key] = [...tr.cells].slice(1).map((c) => c.textContent);
    }
    return out;
  });
}
