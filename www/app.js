// The demo page: opens the device, loads a kava model directory with progress, then answers the
// question twice — latent reasoning and a full chain of thought, one after the other so that each
// timing is its own — and compares what each cost. All model work is kava's (kava-web, wasm).
//
// URL parameters: ?backend=auto|webgpu|cpu (default auto), ?model=URL (default
// models/kava-demo/, the KaVa demo model `kava demo` embeds), ?latents=M&iterations=T
// (for models without kava.json), ?maxcot=N (CoT token cap, default 256), ?show=K (nearest
// tokens per latent slot, default 3), ?warmup=0 (skip the kernel warm-up after loading).
//
// `window.kavaDemo` exposes the state for tests and the console: {backend, adapter, fallback,
// model, results: {latent, cot}, error}; `document.body.dataset.state` is one of starting,
// loading, warming, ready, solving, solved, error.

const params = new URLSearchParams(location.search);
const int = (name, dflt) => {
  const v = parseInt(params.get(name) ?? '', 10);
  return Number.isFinite(v) && v >= 0 ? v : dflt;
};
const settings = {
  backend: params.get('backend') ?? 'auto',
  model: params.get('model') ?? 'models/kava-demo/',
  latents: int('latents', 24),
  iterations: int('iterations', 3),
  maxCot: int('maxcot', 256),
  show: int('show', 3),
  warmup: params.get('warmup') !== '0',
};

// GSM8k-style problems (the questions of `kava bench`), until a model directory with a
// `questions.txt` (the demo model's held-out problems) is loaded: then its questions.
let EXAMPLES = [
  'A baker makes 24 muffins in the morning and 18 in the afternoon. She sells 30 of them. How many muffins are left?',
  'Tom has 5 boxes with 12 pencils in each box. He gives away 17 pencils. How many pencils does he have now?',
  'A train travels 60 miles per hour for 3 hours and then 45 miles per hour for 2 hours. How many miles does it travel in total?',
  'Maria buys 4 notebooks at $3 each and 2 pens at $2 each. She pays with a $20 bill. How much change does she get?',
  'A garden has 8 rows of tomato plants with 7 plants in each row. Each plant gives 5 tomatoes. How many tomatoes are there?',
  'Sam reads 15 pages a day for 6 days and then 20 pages a day for 4 days. How many pages does he read?',
  'A school has 420 students. One third of them walk to school and 90 ride bikes. How many students come another way?',
  'Lena saves $35 each week. After 8 weeks she spends $110 on a bike. How much money does she have left?',
];

const $ = (id) => document.getElementById(id);
const demo = (window.kavaDemo = { settings, results: {}, error: null });
let engine = null;
let model = null;

function setState(state) {
  document.body.dataset.state = state;
  demo.state = state;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
  demo.error = message;
  setState('error');
  console.error(message);
}

function clearError() {
  $('error').hidden = true;
  demo.error = null;
}

function notice(message) {
  const box = $('notice');
  box.textContent = message;
  box.hidden = !message;
}

const errorText = (e) => (e && e.message) || String(e);

window.addEventListener('error', (e) => showError(`page error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => showError(`page error: ${errorText(e.reason)}`));

const fmt = {
  int: (n) => (n == null ? '–' : Math.round(n).toLocaleString('en-US')),
  ms: (n) => (n == null ? '–' : n < 10 ? n.toFixed(2) : n.toFixed(1)),
  kib: (n) => (n == null ? '–' : (n / 1024).toFixed(1)),
  bytes: (n) => (n < 1 << 20 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / (1 << 20)).toFixed(1)} MiB`),
};

// ---- the wasm module ----------------------------------------------------------------------------

async function bindings() {
  if (window.wasmBindings) return window.wasmBindings;
  return new Promise((resolve, reject) => {
    addEventListener('TrunkApplicationStarted', () => resolve(window.wasmBindings), { once: true });
    setTimeout(() => reject(new Error('the WebAssembly module did not start within 60 s')), 60000);
  });
}

async function openDevice(wasm) {
  engine = await wasm.openEngine(settings.backend);
  demo.backend = engine.backend;
  demo.adapter = engine.adapter;
  demo.fallback = engine.fallback ?? null;
  demo.maxBufferBytes = engine.maxBufferBytes ?? null;
  const badge = $('backend');
  if (engine.backend === 'webgpu') {
    badge.textContent = `WebGPU · ${engine.adapter} · max buffer ${fmt.bytes(engine.maxBufferBytes)}`;
    badge.className = 'badge gpu';
  } else {
    badge.textContent = `CPU (wasm) · ${engine.adapter}`;
    badge.className = 'badge cpu';
    if (engine.fallback) {
      notice(`No WebGPU here — running on the CPU backend instead. Reason: ${engine.fallback}`);
    }
  }
}

// ---- loading a model ----------------------------------------------------------------------------

async function loadModel(url) {
  clearError();
  setState('loading');
  $('solve').disabled = true;
  $('load').disabled = true;
  model?.free();
  model = null;
  demo.model = null;
  const bar = $('progress-bar');
  bar.style.width = '0%';
  const status = $('model-status');
  status.textContent = `loading ${url}…`;
  const onProgress = (file, loaded, total) => {
    const pct = total ? Math.min(100, (100 * loaded) / total) : null;
    bar.style.width = pct == null ? '100%' : `${pct}%`;
    bar.classList.toggle('indeterminate', pct == null);
    status.textContent = `${file}: ${fmt.bytes(loaded)}${total ? ` of ${fmt.bytes(total)}` : ''}`;
  };
  try {
    model = await engine.loadModel(url, onProgress, settings.latents, settings.iterations);
  } catch (e) {
    status.textContent = 'not loaded';
    bar.style.width = '0%';
    showError(`Could not load the model at ${url}: ${errorText(e)}`);
    $('load').disabled = false;
    return;
  }
  const info = model.info();
  demo.model = info;
  bar.style.width = '100%';
  const lat = info.latent;
  const latText = lat
    ? `M = ${lat.num_latents} latents, T = ${lat.num_iterations} iterations${lat.trained ? '' : ' (untrained: attached here, answers are meaningless)'}`
    : 'no latents';
  status.textContent = `${info.family}, ${info.layers} layers, d = ${info.hidden}, vocab ${info.vocab}, ` +
    `${fmt.int(info.parameters)} parameters · ${fmt.bytes(info.downloaded_bytes)} in ${fmt.ms(info.load_ms)} ms · ${latText}`;
  $('footer-model').textContent = url;
  await loadExamples(url);
  try {
    await warmUp(status);
  } catch (e) {
    showError(`The warm-up run failed: ${errorText(e)}`);
    $('load').disabled = false;
    return;
  }
  $('load').disabled = false;
  $('solve').disabled = false;
  setState('ready');
}

// WebGPU compiles each kernel the first time it runs (seconds on a software adapter): one short
// run of each mode after loading, so that the race measures reasoning, not shader compilation.
// The CPU backend compiles nothing.
async function warmUp(status) {
  demo.warmupMs = null;
  if (engine.backend !== 'webgpu' || !settings.warmup) return;
  setState('warming');
  const before = status.textContent;
  status.textContent = `${before} · compiling GPU kernels (one short run of each mode)…`;
  const t0 = performance.now();
  await model.solve(EXAMPLES[0], 'latent', null, Math.min(1, settings.show), 0, 2);
  await model.solve(EXAMPLES[0], 'cot', null, 0, 2, 2);
  demo.warmupMs = performance.now() - t0;
  status.textContent = `${before} · kernels compiled in ${fmt.ms(demo.warmupMs)} ms`;
}

// ---- solving ------------------------------------------------------------------------------------

const ROWS = [
  ['forward passes', 'forward_passes', fmt.int],
  ['prompt tokens', 'prompt_tokens', fmt.int],
  ['generated tokens', 'generated_tokens', fmt.int],
  ['KV-cache entries', 'kv_entries', fmt.int],
  ['KV-cache KiB', 'kv_bytes', fmt.kib],
  ['prefill ms', 'prefill_ms', fmt.ms],
  ['latent ms', 'latent_ms', fmt.ms],
  ['decode ms', 'decode_ms', fmt.ms],
  ['time to answer ms', 'wall_ms', fmt.ms],
];

function renderStats() {
  const { latent, cot } = demo.results;
  const body = $('stats').tBodies[0];
  body.replaceChildren();
  for (const [label, key, f] of ROWS) {
    const tr = body.insertRow();
    tr.dataset.key = key;
    tr.insertCell().textContent = label;
    const l = latent?.[key];
    const c = cot?.[key];
    tr.insertCell().textContent = f(l);
    tr.insertCell().textContent = f(c);
    // A ratio against a near-zero time says nothing.
    const meaningful = l != null && c != null && (key.endsWith('_ms') ? l >= 1 && c > 0 : l > 0);
    tr.insertCell().textContent = meaningful ? `${(c / l).toFixed(2)}×` : '–';
  }
  renderChart();
  if (latent?.wall_ms && cot?.wall_ms && !cot.live) {
    const s = cot.wall_ms / latent.wall_ms;
    $('speedup').textContent = `latent answered ${s.toFixed(1)}× ${s >= 1 ? 'faster' : 'slower'} than CoT`;
  } else {
    $('speedup').textContent = '';
  }
}

function renderChart() {
  const { latent, cot } = demo.results;
  const chart = $('chart');
  chart.replaceChildren();
  for (const [label, key, f] of [ROWS[0], ROWS[2], ROWS[4], ROWS[8]]) {
    const l = latent?.[key] ?? 0;
    const c = cot?.[key] ?? 0;
    const max = Math.max(l, c, 1e-9);
    const group = document.createElement('div');
    group.className = 'bar-group';
    group.innerHTML = `<div class="bar-label">${label}</div>`;
    for (const [name, v] of [['latent', l], ['CoT', c]]) {
      const row = document.createElement('div');
      row.className = `bar-row ${name === 'latent' ? 'latent' : 'cot'}`;
      row.innerHTML = `<span class="bar-name">${name}</span><span class="bar" style="width:${(100 * v) / max}%"></span><span class="bar-value">${f(v)}</span>`;
      group.appendChild(row);
    }
    chart.appendChild(group);
  }
}

function renderLatentTokens(slots) {
  const table = $('latent-tokens');
  table.replaceChildren();
  slots.forEach((slot, j) => {
    const tr = table.insertRow();
    tr.insertCell().textContent = `z${j}`;
    for (const { token, logit } of slot) {
      const td = tr.insertCell();
      td.textContent = JSON.stringify(token);
      td.title = `logit ${logit.toFixed(3)}`;
    }
  });
}

const answerText = (r) => (r.answer == null ? 'none' : String(r.answer));

async function runMode(mode, question) {
  const text = $(`${mode}-text`);
  const answer = $(`${mode}-answer`);
  text.textContent = '';
  answer.textContent = '…';
  const t0 = performance.now();
  let tokens = 0;
  // Live counters while tokens stream in; kava's own statistics replace them at the end.
  const onToken = (_id, soFar) => {
    tokens += 1;
    text.textContent = soFar;
    if (mode === 'cot') {
      demo.results.cot = { live: true, generated_tokens: tokens, forward_passes: tokens, wall_ms: performance.now() - t0 };
      if (tokens % 4 === 0) renderStats();
    }
  };
  const result = await model.solve(question, mode, onToken, mode === 'latent' ? settings.show : 0, settings.maxCot);
  result.js_ms = performance.now() - t0;
  text.textContent = result.text;
  answer.textContent = answerText(result);
  demo.results[mode] = result;
  if (mode === 'latent') renderLatentTokens(result.latent_tokens);
  renderStats();
  return result;
}

async function solve() {
  const question = $('question').value.trim();
  if (!question) {
    showError('Type a question first.');
    return;
  }
  clearError();
  setState('solving');
  $('solve').disabled = true;
  $('load').disabled = true;
  demo.results = {};
  demo.question = question;
  renderStats();
  try {
    $('run-status').textContent = 'latent reasoning…';
    await runMode('latent', question);
    $('run-status').textContent = 'chain of thought…';
    await runMode('cot', question);
    $('run-status').textContent = `done on ${engine.backend === 'webgpu' ? 'WebGPU' : 'the CPU'}`;
    setState('solved');
  } catch (e) {
    showError(`Solving failed: ${errorText(e)}`);
  } finally {
    $('solve').disabled = false;
    $('load').disabled = false;
  }
}

// ---- start --------------------------------------------------------------------------------------

function showExamples() {
  const select = $('examples');
  select.length = 0;
  select.add(new Option('example problems…', ''));
  EXAMPLES.forEach((q, i) => select.add(new Option(`${i + 1}. ${q.slice(0, 60)}…`, q)));
  demo.examples = EXAMPLES;
}

// A model directory's `questions.txt` (GSM8k-Aug text: `question||<<steps>> #### answer` per
// line, what `kava demo` solves) replaces the examples; without one they stay as they are.
async function loadExamples(url) {
  let text;
  try {
    const response = await fetch(`${url}questions.txt`);
    if (!response.ok) return;
    text = await response.text();
  } catch {
    return;
  }
  const questions = text.split('\n').filter((l) => l.includes('||')).map((l) => l.split('||')[0].trim()).filter(Boolean);
  if (!questions.length) return;
  const typed = $('question').value.trim();
  const untouched = !typed || EXAMPLES.includes(typed);
  EXAMPLES = questions;
  showExamples();
  if (untouched) $('question').value = EXAMPLES[0];
}

function setupControls() {
  const select = $('examples');
  showExamples();
  select.addEventListener('change', () => {
    if (select.value) $('question').value = select.value;
  });
  $('question').value = EXAMPLES[0];
  $('model-url').value = settings.model;
  $('load').addEventListener('click', () => loadModel($('model-url').value.trim()));
  $('solve').addEventListener('click', solve);
}

async function main() {
  setupControls();
  renderStats();
  let wasm;
  try {
    wasm = await bindings();
  } catch (e) {
    showError(`The WebAssembly module failed to start: ${errorText(e)}`);
    return;
  }
  try {
    await openDevice(wasm);
  } catch (e) {
    showError(`Could not open a compute device: ${errorText(e)}`);
    return;
  }
  await loadModel(settings.model);
}

main();
