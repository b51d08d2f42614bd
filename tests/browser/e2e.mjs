// End-to-end test of the browser demo in Debian's headless Chromium (run by scripts/test-web.sh).
//
//   node e2e.mjs --dist www/dist --reference REF.json --question Q --out DIR [--maxcot N --show K]
//
// REF.json is `kava solve --json --mode both` of the native CLI on the same model, question and
// settings. Greedy decoding is deterministic, so the browser must give the same text, answer,
// token counts and KV statistics (and the same nearest tokens of every latent slot), on
// WebGPU (SwiftShader) and on the CPU fallback with WebGPU disabled. The stats table must show
// fewer forward passes for latent reasoning than for CoT. Then the page's messages: no WebGPU
// at all (navigator.gpu removed), a failed download (404) and a model too large for the
// adapter's buffer limits. Screenshots go to DIR. Any failure exits non-zero.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launch, open, serve, solve, statsTable, waitState } from './lib.mjs';

const { values: args } = parseArgs({
  options: {
    dist: { type: 'string' },
    reference: { type: 'string' },
    question: { type: 'string' },
    out: { type: 'string' },
    model: { type: 'string', default: 'models/tiny-llama/' },
    maxcot: { type: 'string', default: '256' },
    show: { type: 'string', default: '3' },
    verbose: { type: 'boolean', default: false },
  },
});
for (const k of ['dist', 'reference', 'question', 'out']) {
  if (!args[k]) throw new Error(`missing --${k}`);
}
mkdirSync(args.out, { recursive: true });
const reference = Object.fromEntries(JSON.parse(readFileSync(args.reference, 'utf8')).map((s) => [s.mode, s]));
const log = args.verbose ? (m) => console.log(m) : () => {};
const TIMEOUT = 300_000;
// Extra files served beside dist/: a model config too large for any adapter.
const SITE = new URL('./site/', import.meta.url).pathname;

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
}

/** The browser's solution against the native CLI's, field by field. */
function compare(label, got, want) {
  check(got.text === want.text, `${label}: text equals native (${JSON.stringify(got.text).slice(0, 60)}…)`);
  if (got.text !== want.text) console.log(`     browser: ${JSON.stringify(got.text)}\n     native:  ${JSON.stringify(want.text)}`);
  check(got.answer === want.answer, `${label}: answer ${got.answer} equals native ${want.answer}`);
  for (const k of ['forward_passes', 'prompt_tokens', 'generated_tokens', 'kv_entries', 'kv_bytes']) {
    check(got[k] === want[k], `${label}: ${k} ${got[k]} equals native ${want[k]}`);
  }
  if (want.latent_tokens.length) {
    // Native JSON: [[token, logit], ...] per slot; browser: [{token, logit}, ...].
    const tokens = (slots) => slots.map((slot) => slot.map((t) => (Array.isArray(t) ? t[0] : t.token)));
    const logits = (slots) => slots.flat().map((t) => (Array.isArray(t) ? t[1] : t.logit));
    check(JSON.stringify(tokens(got.latent_tokens)) === JSON.stringify(tokens(want.latent_tokens)),
      `${label}: nearest tokens of all ${want.latent_tokens.length} latent slots equal native`);
    const diff = Math.max(...logits(got.latent_tokens).map((v, i) => Math.abs(v - logits(want.latent_tokens)[i])));
    check(diff < 1e-3, `${label}: latent-slot logits within 1e-3 of native (max diff ${diff.toExponential(2)})`);
  }
}

async function run({ webgpu, name }) {
  const server = await serve(args.dist, SITE);
  const { browser, close } = await launch({ webgpu });
  try {
    // The WebGPU run asks for WebGPU explicitly; the other asks for the default (auto), which
    // must notice the missing WebGPU and fall back to the CPU.
    const backend = webgpu ? 'webgpu' : 'auto';
    const url = `${server.url}?backend=${backend}&model=${encodeURIComponent(args.model)}&maxcot=${args.maxcot}&show=${args.show}`;
    const { page, problems } = await open(browser, url, log);
    const t0 = Date.now();
    await waitState(page, ['ready'], TIMEOUT);
    const state = await page.evaluate(() => JSON.parse(JSON.stringify(window.kavaDemo)));
    console.log(`[${name}] backend ${state.backend} (${state.adapter}); model loaded in ${Date.now() - t0} ms` +
      (state.fallback ? `; fallback: ${state.fallback}` : ''));
    if (webgpu) {
      check(state.backend === 'webgpu', `${name}: runs on WebGPU`);
      check(state.warmupMs > 0, `${name}: kernels warmed up after loading (${state.warmupMs?.toFixed(0)} ms)`);
    } else {
      check(state.backend === 'cpu', `${name}: falls back to the CPU backend`);
      check(/WebGPU/.test(state.fallback ?? ''), `${name}: says why (${state.fallback})`);
      check(await page.isVisible('#notice'), `${name}: the page shows the no-WebGPU notice`);
    }
    check(state.model.latent && state.model.latent.trained === false, `${name}: untrained latents attached (M ${state.model.latent?.num_latents}, T ${state.model.latent?.num_iterations})`);

    const demo = await solve(page, args.question, TIMEOUT);
    const { latent, cot } = demo.results;
    compare(`${name} latent`, latent, reference.latent);
    compare(`${name} cot`, cot, reference.cot);
    check(latent.backend === state.backend && cot.backend === state.backend, `${name}: solutions report backend ${state.backend}`);

    const table = await statsTable(page);
    const passes = table.forward_passes.map((s) => parseInt(s.replace(/,/g, ''), 10));
    check(passes[0] === latent.forward_passes && passes[1] === cot.forward_passes, `${name}: stats table shows the passes (${passes[0]} latent, ${passes[1]} CoT)`);
    check(passes[0] < passes[1], `${name}: fewer forward passes for latent (${passes[0]}) than for CoT (${passes[1]})`);
    check(await page.locator('#chart .bar-group').count() === 4, `${name}: bar chart drawn`);
    check((await page.textContent('#cot-text')).length > 0, `${name}: CoT text shown`);
    check(await page.locator('#latent-tokens tr').count() === reference.latent.latent_tokens.length, `${name}: latent slots listed`);
    check(problems.length === 0, `${name}: no console errors${problems.length ? `: ${problems.join(' | ')}` : ''}`);

    const shot = join(args.out, `demo-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`[${name}] time to answer: latent ${latent.wall_ms.toFixed(1)} ms, CoT ${cot.wall_ms.toFixed(1)} ms; screenshot ${shot}`);
    return { name, backend: state.backend, adapter: state.adapter, latent, cot };
  } finally {
    await close();
    server.close();
  }
}

async function messages() {
  // A browser without WebGPU at all (no navigator.gpu, as in browsers that lack it), a missing
  // model and a model too large for the adapter: clear messages, no crash.
  const server = await serve(args.dist, SITE);
  const { browser, close } = await launch({ webgpu: true });
  try {
    const page = await browser.newPage();
    await page.addInitScript(() => delete Navigator.prototype.gpu);
    await page.goto(`${server.url}?model=${encodeURIComponent(args.model)}`);
    await waitState(page, ['ready'], TIMEOUT);
    const { backend, fallback } = await page.evaluate(() => window.kavaDemo);
    const notice = await page.textContent('#notice');
    check(backend === 'cpu' && /navigator\.gpu is missing/.test(fallback ?? '') && await page.isVisible('#notice') && /No WebGPU/.test(notice),
      `no navigator.gpu: CPU backend and the notice: ${notice}`);
    await page.close();

    // Without ?model the page opens the KaVa demo model (the one `kava demo` embeds), which the
    // build copies in with its problems; the runs above use the tiny fixture, whose decode steps
    // SwiftShader can afford.
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'kava.json', 'kava.safetensors', 'questions.txt']) {
      const response = await fetch(`${server.url}models/kava-demo/${file}`, { method: 'HEAD' });
      check(response.ok, `the demo model's ${file} is served (HTTP ${response.status})`);
    }
    const defaults = await browser.newPage();
    await defaults.goto(server.url);
    const model = await defaults.evaluate(() => window.kavaDemo.settings.model);
    const box = await defaults.inputValue('#model-url');
    check(model === 'models/kava-demo/' && box === model, `the default model is the demo model (${model}, box ${box})`);
    await defaults.close();

    for (const [model, pattern, what] of [
      ['models/does-not-exist/', /HTTP 404/, 'a failed download'],
      ['models/too-large/', /too large for this GPU adapter/, 'a model beyond the adapter\'s buffer limits'],
    ]) {
      const { page } = await open(browser, `${server.url}?backend=webgpu&model=${encodeURIComponent(model)}`, log);
      await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: TIMEOUT });
      const message = await page.textContent('#error');
      check(pattern.test(message) && await page.isVisible('#error'), `error message for ${what}: ${message}`);
      await page.close();
    }
  } finally {
    await close();
    server.close();
  }
}

try {
  const results = [await run({ webgpu: true, name: 'webgpu' }), await run({ webgpu: false, name: 'cpu-fallback' })];
  await messages();
  writeFileSync(join(args.out, 'e2e-results.json'), JSON.stringify(results, null, 2));
} catch (e) {
  console.log(`FAIL ${e.stack ?? e}`);
  failures += 1;
}
console.log(failures ? `e2e: ${failures} check(s) failed` : 'e2e: all checks passed');
process.exit(failures ? 1 : 0);
