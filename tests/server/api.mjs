#!/usr/bin/env node
// API acceptance test for deepseek-server, driven by the official `openai` npm client.
//
//   node tests/server/api.mjs SERVER_BIN MODEL OUT_DIR
//
// NODE_PATH must name a folder holding node_modules/openai (npm install --ignore-scripts openai).
// Starts several servers (each with --port 0 and -t 1), one after the other, and prints TAP-like
// lines `ok N - desc` / `not ok N - desc: reason`, then the plan `1..N`. Exit status 1 if any
// check failed. Every server it started is killed on the way out, whatever happens; the whole
// run gives up after OVERALL_MS. Server logs go to OUT_DIR/server-NAME.log.

import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const OVERALL_MS = 240_000;
const START_MS = 60_000;
const STOP_MS = 10_000;
const REQ_MS = 60_000;

const [BIN, MODEL, OUT_DIR, REASON_MODEL] = process.argv.slice(2); // REASON_MODEL: optional, any GGUF with a tokenizer
if (!BIN || !MODEL || !OUT_DIR) {
  console.error('usage: node tests/server/api.mjs SERVER_BIN MODEL OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(OUT_DIR, { recursive: true });
const MODEL_ID = path.basename(MODEL);

// ---------------------------------------------------------------- servers and cleanup

const live = new Set();          // servers whose process has not exited yet
const stopped = [];              // { name, code, signal, how } for the final exit-status check

function killAll() {
  for (const s of live) {
    try { s.child.kill('SIGKILL'); } catch {}
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.log(`Bail out! got ${sig}`);
    killAll();
    process.exit(1);
  });
}
const overall = setTimeout(() => {
  console.log(`Bail out! overall timeout (${OVERALL_MS / 1000} s)`);
  killAll();
  process.exit(1);
}, OVERALL_MS);

async function startServer(name, extra = []) {
  const args = ['-m', MODEL, '--host', '127.0.0.1', '--port', '0', '-t', '1', ...extra];
  const log = fs.createWriteStream(path.join(OUT_DIR, `server-${name}.log`), { flags: 'a' });
  log.write(`$ ${BIN} ${args.join(' ')}\n`);
  const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const srv = { name, child, args, tail: '', stopping: false, exited: null, base: null };
  live.add(srv);
  srv.exitPromise = new Promise((resolve) => {
    child.on('error', (e) => {          // could not spawn: there is no process to wait for
      if (child.pid !== undefined) return;
      srv.exited = { code: null, signal: null, error: e.message };
      live.delete(srv);
      resolve(srv.exited);
    });
    child.on('exit', (code, signal) => {
      srv.exited = { code, signal };
      live.delete(srv);
      log.write(`[exited: code ${code} signal ${signal}]\n`);
      if (!srv.stopping && srv.base) {
        console.log(`# server ${name} exited unexpectedly (code ${code}, signal ${signal}); log tail: ${oneLine(srv.tail.slice(-400))}`);
        stopped.push({ name, code, signal, how: 'crashed' });
      }
      resolve(srv.exited);
    });
  });
  child.stdout.on('data', (d) => log.write(d));
  try {
    const port = await new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`no "listening on" line within ${START_MS / 1000} s`)), START_MS);
      child.stderr.on('data', (d) => {
        log.write(d);
        const s = d.toString();
        srv.tail = (srv.tail + s).slice(-4000);
        buf += s;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i).replace(/\r$/, '');
          buf = buf.slice(i + 1);
          const m = /^deepseek-server: listening on http:\/\/127\.0\.0\.1:(\d+)$/.exec(line);
          if (m) { clearTimeout(timer); resolve(Number(m[1])); }
        }
      });
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`exited (code ${code}, signal ${signal}) before listening: ${oneLine(srv.tail.slice(-600))}`));
      });
    });
    srv.base = `http://127.0.0.1:${port}`;
    return srv;
  } catch (e) {
    srv.stopping = true;
    try { child.kill('SIGKILL'); } catch {}
    await Promise.race([srv.exitPromise, sleep(5000)]);
    throw new Error(`server ${name} (${args.join(' ')}) did not start: ${e.message}`);
  }
}

// SIGTERM, wait for the exit (SIGKILL after STOP_MS). Records the status for the final check.
async function stopServer(srv) {
  if (!srv) return null;
  if (srv.exited) return srv.exited;
  srv.stopping = true;
  srv.child.kill('SIGTERM');
  const t0 = Date.now();
  const r = await Promise.race([srv.exitPromise, sleep(STOP_MS).then(() => null)]);
  if (r) {
    stopped.push({ name: srv.name, code: r.code, signal: r.signal, how: `SIGTERM, ${Date.now() - t0} ms` });
    return r;
  }
  srv.child.kill('SIGKILL');
  await Promise.race([srv.exitPromise, sleep(5000)]);
  stopped.push({ name: srv.name, code: null, signal: 'SIGKILL', how: `still running ${STOP_MS / 1000} s after SIGTERM` });
  return { code: null, signal: 'SIGKILL' };
}

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function oneLine(s, max = 600) {
  s = String(s).replace(/\s*\n\s*/g, ' | ');
  return s.length > max ? s.slice(0, max) + '...' : s;
}
const show = (s, max = 120) => JSON.stringify(s.length > max ? s.slice(0, max) + '...' : s);

function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(a, b, what) {
  if (a !== b) throw new Error(`${what}: got ${JSON.stringify(a)}, expected ${JSON.stringify(b)}`);
}

let count = 0;
let failures = 0;
async function test(desc, fn) {
  let note;
  try {
    note = await fn();
  } catch (e) {
    failures++;
    console.log(`not ok ${++count} - ${desc}: ${oneLine(e?.message ?? e)}`);
    return false;
  }
  console.log(`ok ${++count} - ${desc}${note ? ` (${note})` : ''}`);
  return true;
}
function need(srv, what = 'server') {
  if (!srv) throw new Error(`${what} did not start`);
  if (srv.exited) throw new Error(`${what} has exited (code ${srv.exited.code}, signal ${srv.exited.signal})`);
}

const require_ = createRequire(path.join(process.env.NODE_PATH || process.cwd(), 'x.js'));
let OpenAI;
try {
  const mod = require_('openai');
  OpenAI = mod.default ?? mod.OpenAI ?? mod;
} catch (e) {
  console.log(`Bail out! cannot load the openai client (NODE_PATH=${process.env.NODE_PATH}): ${oneLine(e.message)}`);
  process.exit(1);
}
const client = (srv, key) => new OpenAI({ baseURL: srv.base + '/v1', apiKey: key ?? 'none', maxRetries: 0, timeout: REQ_MS });

// Raw HTTP, for what the client would refuse to send. Returns { status, type, text, json }.
async function raw(srv, method, p, { body, headers = {} } = {}) {
  const res = await fetch(srv.base + p, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(REQ_MS),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, type: res.headers.get('content-type') || '', text, json };
}

// A POST with a large body through node:http, so that a response the server sends before it
// has read the whole body (413) is still seen.
function bigPost(srv, p, bytes) {
  return new Promise((resolve, reject) => {
    const head = '{"model":"m","messages":[{"role":"user","content":"';
    const tail = '"}]}';
    const total = head.length + bytes + tail.length;
    const url = new URL(srv.base + p);
    let response = null;
    let done = false;
    const finish = (v, err) => { if (done) return; done = true; clearTimeout(timer); err ? reject(err) : resolve(v); };
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': total },
    }, (res) => {
      response = { status: res.statusCode, text: '' };
      res.setEncoding('utf8');
      res.on('data', (d) => { response.text += d; });
      res.on('end', () => finish(response));
      res.on('error', () => finish(response));
      res.on('aborted', () => finish(response));
    });
    const timer = setTimeout(() => { req.destroy(); finish(null, new Error('no response within 60 s')); }, REQ_MS);
    req.on('error', (e) => {
      if (response) finish(response);
      else finish(null, new Error(`connection error before any response: ${e.code || e.message}` +
        ' (the server has to read or drain the body before it closes, or clients never see the 413)'));
    });
    // write in chunks, stop writing once the server answered
    const chunk = 'a'.repeat(1 << 16);
    let left = bytes;
    req.write(head);
    const pump = () => {
      while (left > 0 && !response && !done) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(n === chunk.length ? chunk : chunk.slice(0, n))) { req.once('drain', pump); return; }
      }
      if (left <= 0) req.end(tail);
    };
    pump();
  });
}

// Streams a request with raw fetch and parses the SSE. Returns { status, type, events } where
// events are the `data:` payloads in order (strings; '[DONE]' kept as is).
async function rawSSE(srv, p, body) {
  const res = await fetch(srv.base + p, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(REQ_MS),
  });
  const text = await res.text();
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) events.push(data.join('\n'));
  }
  return { status: res.status, type: res.headers.get('content-type') || '', events };
}

// Sends a chat request through the client and returns the completion plus the time taken.
async function chat(c, params) {
  const t0 = performance.now();
  const r = await c.chat.completions.create({ model: MODEL_ID, ...params });
  return { r, ms: Math.round(performance.now() - t0) };
}

// Streams a chat request through the client. Returns { content, role, finish, usage, chunks }.
async function chatStream(c, params, opts) {
  const stream = await c.chat.completions.create({ model: MODEL_ID, ...params, stream: true }, opts);
  const out = { content: '', role: undefined, finish: undefined, usage: undefined, chunks: 0, first: undefined };
  for await (const ch of stream) {
    out.chunks++;
    if (ch.usage) out.usage = ch.usage;
    const c0 = ch.choices?.[0];
    if (!c0) continue;
    if (out.first === undefined) out.first = c0.delta;
    if (c0.delta?.role && out.role === undefined) out.role = c0.delta.role;
    if (typeof c0.delta?.content === 'string') out.content += c0.delta.content;
    if (typeof c0.delta?.reasoning_content === 'string') out.reasoning = (out.reasoning ?? '') + c0.delta.reasoning_content;
    if (c0.finish_reason) out.finish = c0.finish_reason;
  }
  return out;
}

function checkUsage(u, maxCompletion) {
  assert(u && typeof u === 'object', `no usage object: ${JSON.stringify(u)}`);
  for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens'])
    assert(Number.isInteger(u[k]) && u[k] >= 0, `usage.${k} is ${JSON.stringify(u[k])}`);
  eq(u.total_tokens, u.prompt_tokens + u.completion_tokens, 'usage.total_tokens (prompt + completion)');
  assert(u.prompt_tokens > 0, 'usage.prompt_tokens is 0');
  if (maxCompletion !== undefined)
    assert(u.completion_tokens <= maxCompletion, `usage.completion_tokens ${u.completion_tokens} > max_tokens ${maxCompletion}`);
}
const cached = (u) => u?.prompt_tokens_details?.cached_tokens;

function checkError(r, status, what) {
  assert(r.status === status, `${what}: status ${r.status}, expected ${status}; body ${show(r.text, 200)}`);
  const e = r.json?.error;
  assert(e && typeof e === 'object', `${what}: body is not an OpenAI error object: ${show(r.text, 200)}`);
  assert(typeof e.message === 'string' && e.message.length > 0, `${what}: error.message is ${JSON.stringify(e.message)}`);
  assert(typeof e.type === 'string', `${what}: error.type is ${JSON.stringify(e.type)}`);
  assert('param' in e && 'code' in e, `${what}: error lacks param or code: ${show(r.text, 200)}`);
  return e.message;
}

async function metrics(srv) {
  const r = await raw(srv, 'GET', '/metrics');
  assert(r.status === 200, `/metrics status ${r.status}`);
  return r;
}
// Sum of the samples of one metric (any labels); undefined when absent.
function metric(text, name) {
  let sum;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
async function gauge(srv, name) {
  const v = metric((await metrics(srv)).text, name);
  assert(v !== undefined, `/metrics has no ${name}`);
  return v;
}

// English text of about `chars` characters (Brown corpus held-out text when it is there).
let corpus;
function englishText(chars, offset) {
  if (corpus === undefined) {
    try {
      corpus = fs.readFileSync(new URL('../data/default-model/heldout.txt', import.meta.url), 'utf8');
    } catch {
      // fallback: deterministic pseudo-English
      const words = ('the of and to a in that is was he for it with as his on be at by had not are but from or have an they which one you were her all she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three').split(' ');
      let x = 12345;
      const rnd = (n) => { x = (x * 1103515245 + 12345) % 2147483648; return x % n; };
      let s = '';
      while (s.length < 200000) {
        const len = 6 + rnd(12);
        const w = [];
        for (let i = 0; i < len; i++) w.push(words[rnd(words.length)]);
        w[0] = w[0][0].toUpperCase() + w[0].slice(1);
        s += w.join(' ') + '. ';
        if (rnd(5) === 0) s += '\n';
      }
      corpus = s;
    }
  }
  const start = Math.min(offset, Math.max(0, corpus.length - chars - 1));
  let s = corpus.slice(start, start + chars);
  const sp = s.indexOf(' ');
  if (sp > 0 && sp < 40) s = s.slice(sp + 1);          // start at a word
  const end = s.lastIndexOf(' ');
  if (end > chars - 60) s = s.slice(0, end);            // end at a word
  return s.replace(/[^\x20-\x7e\n]/g, ' ').trim();
}

// ---------------------------------------------------------------- the tests

const BASIC = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Tell me about the old house by the river.' },
];
const LONG_PROMPT = englishText(4700, 20000);        // ~1500 tokens of the default model
const OVER_PROMPT = englishText(1950, 80000);        // ~600 tokens

let main = null;
try {
  // 1. start, /health, /v1/models
  await test('server starts; /health ok; /v1/models lists the model file', async () => {
    main = await startServer('main', ['-c', '4096', '-np', '1']);
    const h = await raw(main, 'GET', '/health');
    eq(h.status, 200, '/health status');
    eq(h.json?.status, 'ok', '/health status field');
    const page = await client(main).models.list();
    const ids = (page.data ?? []).map((m) => m.id);
    assert(ids.includes(MODEL_ID), `/v1/models ids ${JSON.stringify(ids)} lack ${MODEL_ID}`);
    const m = await raw(main, 'GET', '/v1/models');
    eq(m.json?.object, 'list', '/v1/models object');
    return `port ${new URL(main.base).port}`;
  });

  // 2. plain chat
  let plain = null;
  await test('plain chat at temperature 0, max_tokens 48', async () => {
    need(main);
    const { r, ms } = await chat(client(main), { messages: BASIC, max_tokens: 48, temperature: 0 });
    assert(typeof r.id === 'string' && r.id.length > 0, `id ${JSON.stringify(r.id)}`);
    eq(r.object, 'chat.completion', 'object');
    assert(Number.isInteger(r.created), `created ${JSON.stringify(r.created)}`);
    assert(typeof r.model === 'string', `model ${JSON.stringify(r.model)}`);
    eq(r.choices?.length, 1, 'number of choices');
    const c0 = r.choices[0];
    eq(c0.index, 0, 'choices[0].index');
    eq(c0.message?.role, 'assistant', 'message.role');
    assert(typeof c0.message.content === 'string' && c0.message.content.trim().length > 0,
      `empty content ${JSON.stringify(c0.message.content)}`);
    assert(['length', 'stop'].includes(c0.finish_reason), `finish_reason ${JSON.stringify(c0.finish_reason)}`);
    checkUsage(r.usage, 48);
    if (c0.finish_reason === 'length') eq(r.usage.completion_tokens, 48, 'completion_tokens with finish_reason "length"');
    assert(Number.isInteger(cached(r.usage)), `usage.prompt_tokens_details.cached_tokens is ${JSON.stringify(cached(r.usage))}`);
    plain = { content: c0.message.content, finish: c0.finish_reason, usage: r.usage };
    return `${ms} ms, ${r.usage.prompt_tokens}+${r.usage.completion_tokens} tokens, ${c0.finish_reason}: ${show(c0.message.content, 60)}`;
  });

  // 3. streamed chat == plain chat
  await test('streamed chat gives the plain answer; usage chunk; data: [DONE]', async () => {
    need(main);
    assert(plain, 'no plain answer (test 2 failed)');
    const s = await chatStream(client(main), {
      messages: BASIC, max_tokens: 48, temperature: 0, stream_options: { include_usage: true },
    });
    eq(s.role, 'assistant', 'first delta role');
    eq(s.first?.role, 'assistant', 'role in the first chunk');
    eq(s.content, plain.content, 'streamed content');
    eq(s.finish, plain.finish, 'finish_reason');
    assert(s.usage, 'no usage chunk with stream_options.include_usage');
    checkUsage(s.usage, 48);
    eq(s.usage.prompt_tokens, plain.usage.prompt_tokens, 'streamed usage.prompt_tokens');
    eq(s.usage.completion_tokens, plain.usage.completion_tokens, 'streamed usage.completion_tokens');
    // the wire format, read by hand
    const w = await rawSSE(main, '/v1/chat/completions', {
      model: MODEL_ID, messages: BASIC, max_tokens: 48, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    eq(w.status, 200, 'raw stream status');
    assert(w.type.startsWith('text/event-stream'), `content-type ${JSON.stringify(w.type)}`);
    assert(w.events.length >= 3, `only ${w.events.length} SSE events`);
    eq(w.events[w.events.length - 1], '[DONE]', 'last SSE event');
    const chunks = w.events.slice(0, -1).map((e) => JSON.parse(e));
    for (const ch of chunks) eq(ch.object, 'chat.completion.chunk', 'chunk object');
    const usageChunk = chunks[chunks.length - 1];
    assert(Array.isArray(usageChunk.choices) && usageChunk.choices.length === 0 && usageChunk.usage,
      `the chunk before [DONE] is not the usage chunk with empty choices: ${show(JSON.stringify(usageChunk), 200)}`);
    const text = chunks.map((ch) => ch.choices?.[0]?.delta?.content ?? '').join('');
    eq(text, plain.content, 'raw streamed content');
    const ids = new Set(chunks.map((ch) => ch.id));
    eq(ids.size, 1, 'number of distinct chunk ids');
    return `${s.chunks} chunks`;
  });

  // 4. seeded sampling
  await test('seeded sampling (temperature 0.8, seed 42) is repeatable', async () => {
    need(main);
    const p = { messages: BASIC, max_tokens: 32, temperature: 0.8, seed: 42 };
    const a = (await chat(client(main), p)).r.choices[0].message.content;
    const b = (await chat(client(main), p)).r.choices[0].message.content;
    assert(a.length > 0, 'empty content');
    eq(b, a, 'second sampled answer');
    const c = (await chat(client(main), { ...p, seed: 43 })).r.choices[0].message.content;
    return `seed 43 ${c === a ? 'gives the same text' : 'differs'}: ${show(a, 50)}`;
  });

  await test('max_completion_tokens limits the answer (a prefix of the greedy one)', async () => {
    need(main);
    const { r } = await chat(client(main), { messages: BASIC, max_completion_tokens: 8, temperature: 0 });
    checkUsage(r.usage, 8);
    const c0 = r.choices[0];
    if (plain) {
      assert(plain.content.startsWith(c0.message.content),
        `${show(c0.message.content)} is not a prefix of the plain answer ${show(plain.content)}`);
      if (plain.usage.completion_tokens > 8) eq(c0.finish_reason, 'length', 'finish_reason');
    }
    return `${r.usage.completion_tokens} tokens: ${show(c0.message.content, 60)}`;
  });

  // 5. stop strings
  await test('stop string ends the answer before it, finish_reason "stop"', async () => {
    need(main);
    assert(plain, 'no plain answer (test 2 failed)');
    const text = plain.content;
    let stop;
    const words = text.split(/\s+/).filter((w) => w.length >= 2);
    for (const w of words.slice(2).concat(words.slice(0, 2))) {
      if (text.indexOf(w) > 0) { stop = w; break; }
    }
    if (!stop) {
      const k = Math.floor(text.length / 2);
      stop = text.slice(k, k + 3);
    }
    assert(stop && text.indexOf(stop) > 0, `no usable stop string in ${show(text)}`);
    const expect = text.slice(0, text.indexOf(stop));
    const base = { messages: BASIC, max_tokens: 48, temperature: 0 };
    const a = (await chat(client(main), { ...base, stop })).r.choices[0];
    eq(a.message.content, expect, `content with stop ${JSON.stringify(stop)}`);
    eq(a.finish_reason, 'stop', 'finish_reason');
    const b = (await chat(client(main), { ...base, stop: ['qqzzxxq', stop] })).r.choices[0];
    eq(b.message.content, expect, `content with stop [.., ${JSON.stringify(stop)}]`);
    eq(b.finish_reason, 'stop', 'finish_reason (array)');
    const s = await chatStream(client(main), { ...base, stop });
    eq(s.content, expect, 'streamed content with stop');
    eq(s.finish, 'stop', 'streamed finish_reason');
    return `stop ${JSON.stringify(stop)} -> ${show(expect, 60)}`;
  });

  // 6. /v1/completions
  await test('/v1/completions plain and streamed give the same text', async () => {
    need(main);
    const c = client(main);
    const p = { model: MODEL_ID, prompt: 'The jury said that the city', max_tokens: 32, temperature: 0 };
    const r = await c.completions.create(p);
    eq(r.object, 'text_completion', 'object');
    const c0 = r.choices?.[0];
    assert(typeof c0?.text === 'string' && c0.text.length > 0, `text ${JSON.stringify(c0?.text)}`);
    assert(['length', 'stop'].includes(c0.finish_reason), `finish_reason ${JSON.stringify(c0.finish_reason)}`);
    if (r.usage !== undefined) checkUsage(r.usage, 32);
    const stream = await c.completions.create({ ...p, stream: true });
    let text = '';
    let finish;
    for await (const ch of stream) {
      const x = ch.choices?.[0];
      if (typeof x?.text === 'string') text += x.text;
      if (x?.finish_reason) finish = x.finish_reason;
    }
    eq(text, c0.text, 'streamed text');
    eq(finish, c0.finish_reason, 'streamed finish_reason');
    return show(c0.text, 60);
  });

  // 7. tool messages in the template
  await test('tools + assistant tool_calls + tool message render; prompt grows', async () => {
    need(main);
    const tools = [{
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Get the current weather in a city',
        parameters: {
          type: 'object',
          properties: {
            city: { type: 'string', description: 'the city name' },
            unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
          },
          required: ['city'],
        },
      },
    }];
    const u1 = { role: 'user', content: 'What is the weather in Boston?' };
    const u2 = { role: 'user', content: 'Thanks. Should I take a coat?' };
    const withTools = [
      { role: 'system', content: 'You are a helpful assistant.' },
      u1,
      {
        role: 'assistant', content: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city": "Boston", "unit": "celsius"}' } }],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 11, "sky": "rain"}' },
      u2,
    ];
    const without = [withTools[0], u1, u2];
    const a = (await chat(client(main), { messages: withTools, tools, tool_choice: 'auto', max_tokens: 16, temperature: 0 })).r;
    const c0 = a.choices?.[0];
    assert(c0 && c0.message, 'no choice');
    assert(['length', 'stop', 'tool_calls'].includes(c0.finish_reason), `finish_reason ${JSON.stringify(c0.finish_reason)}`);
    if (c0.finish_reason === 'tool_calls') assert(Array.isArray(c0.message.tool_calls) && c0.message.tool_calls.length > 0, 'finish_reason "tool_calls" without message.tool_calls');
    else assert(typeof c0.message.content === 'string', `content ${JSON.stringify(c0.message.content)}`);
    checkUsage(a.usage, 16);
    const b = (await chat(client(main), { messages: without, tools, max_tokens: 16, temperature: 0 })).r;
    checkUsage(b.usage, 16);
    assert(a.usage.prompt_tokens > b.usage.prompt_tokens,
      `prompt_tokens with the tool messages ${a.usage.prompt_tokens} <= without ${b.usage.prompt_tokens}`);
    return `prompt_tokens ${a.usage.prompt_tokens} vs ${b.usage.prompt_tokens} without, ${c0.finish_reason}`;
  });

  // 8. prefix cache in memory
  let longAnswer = null;
  await test('prefix cache in memory: long prompt twice', async () => {
    need(main);
    const p = { messages: [{ role: 'user', content: LONG_PROMPT }], max_tokens: 16, temperature: 0 };
    const a = await chat(client(main), p);
    const b = await chat(client(main), p);
    checkUsage(a.r.usage, 16);
    checkUsage(b.r.usage, 16);
    const pt = b.r.usage.prompt_tokens;
    eq(pt, a.r.usage.prompt_tokens, 'prompt_tokens of the second');
    assert(pt >= 1000, `the long prompt is only ${pt} tokens`);
    const ct = cached(b.r.usage);
    assert(Number.isInteger(ct), `cached_tokens ${JSON.stringify(ct)}`);
    assert(ct >= 0.9 * pt, `cached_tokens ${ct} < 90% of prompt_tokens ${pt}`);
    assert(ct <= pt - 1, `cached_tokens ${ct} > prompt_tokens - 1 (${pt - 1})`);
    eq(b.r.choices[0].message.content, a.r.choices[0].message.content, 'second answer');
    longAnswer = a.r.choices[0].message.content;
    return `${pt} prompt tokens, cached ${cached(a.r.usage)} then ${ct}; ${a.ms} ms then ${b.ms} ms`;
  });

  await test('/metrics: Prometheus text with the counters', async () => {
    need(main);
    const r = await metrics(main);
    assert(r.type.startsWith('text/plain'), `content-type ${JSON.stringify(r.type)}`);
    const v = {};
    for (const name of ['deepseek_prompt_tokens_total', 'deepseek_tokens_predicted_total', 'deepseek_requests_total',
      'deepseek_prompt_cache_hit_tokens_total']) {
      assert(r.text.split('\n').some((l) => l.startsWith(name)), `no line starting ${name}`);
      v[name] = metric(r.text, name);
      assert(Number.isFinite(v[name]), `${name} value ${v[name]}`);
    }
    assert(v.deepseek_requests_total > 0, 'deepseek_requests_total is 0');
    assert(v.deepseek_prompt_tokens_total > 0, 'deepseek_prompt_tokens_total is 0');
    assert(v.deepseek_tokens_predicted_total > 0, 'deepseek_tokens_predicted_total is 0');
    assert(v.deepseek_prompt_cache_hit_tokens_total > 0, 'deepseek_prompt_cache_hit_tokens_total is 0 after the cached prompt');
    return Object.entries(v).map(([k, x]) => `${k.replace('deepseek_', '')} ${x}`).join(', ');
  });

  // 11. client disconnect
  await test('client disconnect: aborted stream frees the server', async () => {
    need(main);
    const ac = new AbortController();
    const stream = await client(main).chat.completions.create({
      model: MODEL_ID, stream: true, max_tokens: 2000, temperature: 0.8, seed: 7,
      messages: [{ role: 'user', content: 'Write a very long story about a small town.' }],
    }, { signal: ac.signal });
    let chunks = 0;
    let during;
    try {
      for await (const ch of stream) {
        chunks++;
        const c0 = ch.choices?.[0];
        if (c0?.delta?.content || c0?.finish_reason || chunks >= 4) {
          during = await gauge(main, 'deepseek_requests_processing');
          ac.abort();
          break;
        }
      }
    } catch (e) {
      if (!(e?.name === 'AbortError' || (OpenAI.APIUserAbortError && e instanceof OpenAI.APIUserAbortError))) throw e;
    }
    assert(chunks > 0, 'no chunk before the abort');
    const idle = async (ms, what) => {   // polls the gauge until 0; returns the ms it took
      const t0 = Date.now();
      for (;;) {
        const g = await gauge(main, 'deepseek_requests_processing');
        if (g === 0) return Date.now() - t0;
        if (Date.now() - t0 > ms) throw new Error(`deepseek_requests_processing still ${g} ${ms / 1000} s ${what}`);
        await sleep(200);
      }
    };
    const freed = await idle(5000, 'after the abort');
    const { r, ms } = await chat(client(main), { messages: BASIC, max_tokens: 16, temperature: 0 });
    assert(r.choices[0].message.content.length > 0, 'empty answer after the abort');
    assert(ms < 15000, `the next request took ${ms} ms`);
    await idle(2000, 'after the next request');
    return `processing ${during} while streaming, 0 after ${freed} ms; next request ${ms} ms`;
  });

  // 12. bad requests
  const bad = (desc, fn) => test(`bad request: ${desc}`, async () => { need(main); return fn(); });
  await bad('broken JSON -> 400', async () => {
    checkError(await raw(main, 'POST', '/v1/chat/completions', { body: '{"model": "x", "messages": [{"role": "user", "cont' }), 400, 'broken JSON');
  });
  await bad('messages a string -> 400', async () => {
    checkError(await raw(main, 'POST', '/v1/chat/completions', { body: { model: MODEL_ID, messages: 'hello' } }), 400, 'messages "hello"');
  });
  await bad('temperature "hot" -> 400', async () => {
    checkError(await raw(main, 'POST', '/v1/chat/completions', { body: { model: MODEL_ID, messages: BASIC, temperature: 'hot' } }), 400, 'temperature "hot"');
  });
  await bad('max_tokens -1 -> 400', async () => {
    checkError(await raw(main, 'POST', '/v1/chat/completions', { body: { model: MODEL_ID, messages: BASIC, max_tokens: -1 } }), 400, 'max_tokens -1');
  });
  await bad('n 2 -> 400', async () => {
    checkError(await raw(main, 'POST', '/v1/chat/completions', { body: { model: MODEL_ID, messages: BASIC, n: 2, max_tokens: 4 } }), 400, 'n 2');
  });
  await bad('unknown path -> 404', async () => {
    checkError(await raw(main, 'GET', '/v1/no-such-thing'), 404, 'GET /v1/no-such-thing');
    checkError(await raw(main, 'POST', '/v2/chat/completions', { body: { model: MODEL_ID, messages: BASIC } }), 404, 'POST /v2/chat/completions');
  });
  await bad('10 MB body -> 413', async () => {
    const r = await bigPost(main, '/v1/chat/completions', 10 * 1024 * 1024);
    let json;
    try { json = JSON.parse(r.text); } catch {}
    checkError({ ...r, json }, 413, '10 MB body');
  });
  await test('after the bad requests: /health 200 and a chat still works', async () => {
    need(main);
    const h = await raw(main, 'GET', '/health');
    eq(h.status, 200, '/health status');
    const { r } = await chat(client(main), { messages: BASIC, max_tokens: 48, temperature: 0 });
    if (plain) eq(r.choices[0].message.content, plain.content, 'greedy answer');
  });
  await stopServer(main);

  // 9. prefix cache on disk
  await test('prefix cache on disk survives a restart', async () => {
    const dir = path.join(OUT_DIR, 'cache');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    const args = ['-c', '4096', '-np', '1', '--cache-dir', dir, '--cache-size', '64'];
    const p = { messages: [{ role: 'user', content: LONG_PROMPT }], max_tokens: 16, temperature: 0 };
    let s1 = await startServer('disk-1', args);
    let a;
    try { a = await chat(client(s1), p); } finally {
      const st = await stopServer(s1);
      assert(st && st.code === 0, `first server's exit on SIGTERM: code ${st?.code}, signal ${st?.signal}`);
    }
    checkUsage(a.r.usage, 16);
    const files = fs.readdirSync(dir, { recursive: true });
    assert(files.length > 0, `nothing written under ${dir}`);
    const s2 = await startServer('disk-2', args);
    let b;
    try { b = await chat(client(s2), p); } finally { await stopServer(s2); }
    checkUsage(b.r.usage, 16);
    const pt = b.r.usage.prompt_tokens;
    eq(pt, a.r.usage.prompt_tokens, 'prompt_tokens after the restart');
    const ct = cached(b.r.usage);
    assert(Number.isInteger(ct), `cached_tokens ${JSON.stringify(ct)}`);
    assert(ct >= 0.9 * pt, `cached_tokens ${ct} < 90% of prompt_tokens ${pt} after the restart`);
    assert(ct <= pt - 1, `cached_tokens ${ct} > prompt_tokens - 1`);
    eq(b.r.choices[0].message.content, a.r.choices[0].message.content, 'answer after the restart');
    const same = longAnswer === null ? '' : longAnswer === a.r.choices[0].message.content ? ', same as in memory' : ', differs from the in-memory run';
    return `${pt} prompt tokens, cached ${cached(a.r.usage)} then ${ct}; ${a.ms} ms then ${b.ms} ms; ${files.length} files${same}`;
  });

  // 10. concurrency
  await test('-np 4: 4 concurrent streams give the sequential texts', async () => {
    const s = await startServer('np4', ['-c', '2048', '-np', '4']);
    try {
      const prompts = [
        'Tell me about the old house by the river.',
        'What did the committee decide about the new school?',
        'Describe the farm in the spring.',
        'Why did the senator go back to Washington?',
      ];
      const p = (q) => ({ messages: [{ role: 'user', content: q }], max_tokens: 32, temperature: 0 });
      const t0 = Date.now();
      const seq = [];
      for (const q of prompts) seq.push((await chatStream(client(s), p(q))).content);
      const t1 = Date.now();
      const par = (await Promise.all(prompts.map((q) => chatStream(client(s), p(q))))).map((x) => x.content);
      const t2 = Date.now();
      for (let i = 0; i < 4; i++) {
        assert(seq[i].length > 0, `empty answer to prompt ${i}`);
        eq(par[i], seq[i], `concurrent answer ${i}`);
      }
      // the concurrent streams' decode steps went through the model together (ds_eval_seqs)
      const mt = (await metrics(s)).text;
      const batches = metric(mt, 'deepseek_decode_batches_total'), rows = metric(mt, 'deepseek_decode_batch_tokens_total');
      assert(batches > 0 && rows >= 2 * batches, `no batched decode steps (batches ${batches}, tokens ${rows})`);
      return `sequential ${t1 - t0} ms, concurrent ${t2 - t1} ms; ${batches} batched decode passes, ${(rows / batches).toFixed(2)} slots each`;
    } finally { await stopServer(s); }
  });

  // a prompt whose prefix another, busy slot holds: its rows are copied into the free slot
  await test('-np 2: a busy slot\'s cached prefix is reused by the other slot', async () => {
    const s = await startServer('borrow', ['-c', '4096', '-np', '2']);
    try {
      const ask = (q) => [{ role: 'user', content: LONG_PROMPT + '\n\n' + q }];
      const ctl = new AbortController();
      const busy = await client(s).chat.completions.create(
        { model: MODEL_ID, messages: ask('First question?'), max_tokens: 3000, temperature: 0, stream: true,
          ignore_eos: true }, { signal: ctl.signal });
      const it = busy[Symbol.asyncIterator]();
      await it.next(); // the first slot has evaluated the long prompt and is generating
      let r;
      try {
        r = await client(s).chat.completions.create({ model: MODEL_ID, messages: ask('Second question?'), max_tokens: 8, temperature: 0 });
      } finally { ctl.abort(); await it.return?.().catch(() => {}); }
      const pt = r.usage.prompt_tokens, ct = cached(r.usage);
      assert(ct >= 0.9 * pt, `cached_tokens ${ct} < 90% of prompt_tokens ${pt}`);
      const alone = await startServer('borrow-alone', ['-c', '4096']);
      try {
        const a = await client(alone).chat.completions.create({ model: MODEL_ID, messages: ask('Second question?'), max_tokens: 8, temperature: 0 });
        eq(r.choices[0].message.content, a.choices[0].message.content, 'the answer with the copied prefix');
      } finally { await stopServer(alone); }
      return `${pt} prompt tokens, ${ct} cached from the busy slot`;
    } finally { await stopServer(s); }
  });

  // reasoning: a template that leaves the model inside <think> (R1's distills) makes what it
  // writes before </think> the reasoning_content; this random-weight model never closes it
  if (REASON_MODEL) await test('reasoning_content: a thinking template\'s answer, plain and streamed', async () => {
    const s = await startServer('reasoning', ['-m', REASON_MODEL, '--chat-template', 'deepseek-r1-distill', '-c', '512']);
    try {
      const p = { messages: [{ role: 'user', content: 'Why is the sky blue?' }], max_tokens: 24, temperature: 0 };
      const a = await chat(client(s), p);
      const m = a.r.choices[0].message;
      assert(typeof m.reasoning_content === 'string' && m.reasoning_content.length > 0, `reasoning_content ${JSON.stringify(m.reasoning_content)}`);
      eq(m.content, '', 'content (the model has not closed its reasoning)');
      const b = await chatStream(client(s), p);
      eq(b.reasoning, m.reasoning_content, 'streamed reasoning_content');
      eq(b.content, '', 'streamed content');
      return `${a.r.usage.completion_tokens} tokens of reasoning, streamed alike`;
    } finally { await stopServer(s); }
  });

  // 13. api key
  await test('--api-key: 401 without/wrong key, 200 with it, /health open', async () => {
    const s = await startServer('apikey', ['-c', '512', '--api-key', 'sekret']);
    try {
      for (const key of [undefined, 'wrong']) {
        let err;
        try { await client(s, key).chat.completions.create({ model: MODEL_ID, messages: BASIC, max_tokens: 4 }); } catch (e) { err = e; }
        assert(err, `no error with key ${JSON.stringify(key ?? 'none')}`);
        eq(err.status, 401, `error status with key ${JSON.stringify(key ?? 'none')}`);
      }
      checkError(await raw(s, 'GET', '/v1/models'), 401, 'GET /v1/models without Authorization');
      checkError(await raw(s, 'POST', '/v1/completions', { body: { model: MODEL_ID, prompt: 'The', max_tokens: 4 }, headers: { authorization: 'Bearer wrong' } }), 401, 'POST /v1/completions with a wrong key');
      const r = await client(s, 'sekret').chat.completions.create({ model: MODEL_ID, messages: BASIC, max_tokens: 8, temperature: 0 });
      assert(typeof r.choices?.[0]?.message?.content === 'string', 'no content with the key');
      const m = await raw(s, 'GET', '/v1/models', { headers: { authorization: 'Bearer sekret' } });
      eq(m.status, 200, '/v1/models status with the key');
      const h = await raw(s, 'GET', '/health');
      eq(h.status, 200, '/health status without a key');
    } finally { await stopServer(s); }
  });

  // 14. prompt longer than the context
  await test('prompt longer than the context -> 400 mentioning the context', async () => {
    const s = await startServer('ctx256', ['-c', '256']);
    try {
      const r = await raw(s, 'POST', '/v1/chat/completions', {
        body: { model: MODEL_ID, messages: [{ role: 'user', content: OVER_PROMPT }], max_tokens: 16 },
      });
      const msg = checkError(r, 400, `a ${OVER_PROMPT.length}-character prompt with -c 256`);
      assert(/context/i.test(msg), `error message does not mention the context: ${JSON.stringify(msg)}`);
      let err;
      try { await client(s).completions.create({ model: MODEL_ID, prompt: OVER_PROMPT, max_tokens: 16 }); } catch (e) { err = e; }
      assert(err?.status === 400, `/v1/completions with the long prompt: ${err ? `status ${err.status}: ${err.message}` : 'no error'}`);
      const ok2 = await client(s).chat.completions.create({ model: MODEL_ID, messages: BASIC, max_tokens: 8, temperature: 0 });
      assert(typeof ok2.choices?.[0]?.message?.content === 'string', 'a short prompt fails afterwards');
      return show(msg, 80);
    } finally { await stopServer(s); }
  });
} catch (e) {
  failures++;
  console.log(`not ok ${++count} - unexpected error: ${oneLine(e?.stack ?? e)}`);
} finally {
  for (const s of [...live]) await stopServer(s);
}

await test('every server stopped on SIGTERM with status 0', async () => {
  assert(stopped.length > 0, 'no server was started');
  const badStops = stopped.filter((s) => s.code !== 0);
  assert(badStops.length === 0, badStops.map((s) => `${s.name}: code ${s.code}, signal ${s.signal} (${s.how})`).join('; '));
  return `${stopped.length} stops`;
});

console.log(`1..${count}`);
if (failures) console.log(`# ${failures} of ${count} failed; server logs in ${OUT_DIR}`);
clearTimeout(overall);
process.exit(failures ? 1 : 0);
