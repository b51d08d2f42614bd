// Latent vs CoT time to answer in headless Chromium (not a test): the demo page solves the
// built-in example questions in both modes, after one warm-up question (shader compilation and
// allocation are not per-question costs), on WebGPU (SwiftShader here) and on the CPU fallback.
// Prints a table per backend and one summary line each.
//
//   node timing.mjs --dist www/dist [--model models/tiny-llama/] [--questions 8] [--maxcot 256]
//                   [--backends webgpu,cpu]
// Run through scripts/web-timing.sh, which builds www/dist first.

import { parseArgs } from 'node:util';
import { launch, open, serve, solve, waitState } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string', default: 'www/dist' },
    model: { type: 'string', default: 'models/tiny-llama/' },
    questions: { type: 'string', default: '8' },
    maxcot: { type: 'string', default: '256' },
    backends: { type: 'string', default: 'webgpu,cpu' },
  },
});
const TIMEOUT = 600_000;
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function time(backend) {
  const server = await serve(args.dist);
  const webgpu = backend === 'webgpu';
  const { browser, close } = await launch({ webgpu });
  try {
    const url = `${server.url}?backend=${backend}&model=${encodeURIComponent(args.model)}&maxcot=${args.maxcot}&show=0&warmup=0`; // its own warm-up below
    const { page } = await open(browser, url);
    await waitState(page, ['ready'], TIMEOUT);
    const info = await page.evaluate(() => ({ backend: window.kavaDemo.backend, adapter: window.kavaDemo.adapter, model: window.kavaDemo.model }));
    if (info.backend !== backend) throw new Error(`asked for ${backend}, got ${info.backend}`);
    const examples = await page.evaluate(() => window.kavaDemo.examples);
    const qs = examples.slice(0, Math.max(1, Math.min(examples.length, Number(args.questions))));
    await solve(page, qs[0], TIMEOUT); // warm-up
    const rows = [];
    for (const q of qs) {
      const { latent, cot } = (await solve(page, q, TIMEOUT)).results;
      rows.push({ latent: latent.wall_ms, cot: cot.wall_ms, lp: latent.forward_passes, cp: cot.forward_passes });
    }
    console.log(`\n${'q'.padStart(3)} ${'latent ms'.padStart(11)} ${'CoT ms'.padStart(11)} ${'passes'.padStart(7)} ${'passes'.padStart(7)} ${'CoT/latent'.padStart(11)}`);
    rows.forEach((r, i) => console.log(`${String(i).padStart(3)} ${r.latent.toFixed(1).padStart(11)} ${r.cot.toFixed(1).padStart(11)} ${String(r.lp).padStart(7)} ${String(r.cp).padStart(7)} ${(r.cot / r.latent).toFixed(2).padStart(10)}x`));
    const [tl, tc] = [mean(rows.map((r) => r.latent)), mean(rows.map((r) => r.cot))];
    const m = info.model;
    console.log(`kava web timing | headless Chromium ${browser.version()} | backend ${backend} (${info.adapter}) | model ${m.url} ` +
      `(${m.family}, ${m.parameters} params, M ${m.latent.num_latents} T ${m.latent.num_iterations}, untrained latents) | ` +
      `${rows.length} questions, CoT ≤ ${args.maxcot} tokens | latent ${tl.toFixed(1)} ms/q (${mean(rows.map((r) => r.lp)).toFixed(1)} passes) | ` +
      `CoT ${tc.toFixed(1)} ms/q (${mean(rows.map((r) => r.cp)).toFixed(1)} passes) | CoT/latent time ${(tc / tl).toFixed(2)}x`);
  } finally {
    await close();
    server.close();
  }
}

for (const backend of args.backends.split(',')) {
  await time(backend.trim());
}
