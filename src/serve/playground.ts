/**
 * The chat playground served at GET /: one self-contained page (no build step, no external
 * network) that streams chat completions over fetch + SSE, exposes the sampling parameters, shows
 * the rendered prompt (POST /v1/chat/render), TTFT and tokens/s per reply, and polls /metrics.
 * Kept as a string so that it ships inside dist/ with the compiled server.
 */
export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft playground</title>
<style>
  :root { --bg:#f7f7f8; --panel:#fff; --line:#ddd; --accent:#2d6cdf; --muted:#666; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.45 system-ui, sans-serif; background:var(--bg); color:#222; display:grid; grid-template-columns: 1fr 320px; height:100vh; }
  main { display:flex; flex-direction:column; min-width:0; }
  header { padding:8px 14px; border-bottom:1px solid var(--line); background:var(--panel); display:flex; gap:12px; align-items:center; }
  header h1 { font-size:16px; margin:0; }
  #model { color:var(--muted); }
  #log { flex:1; overflow:auto; padding:14px; }
  .msg { max-width:900px; margin:0 0 12px; padding:8px 12px; border-radius:8px; background:var(--panel); border:1px solid var(--line); white-space:pre-wrap; word-wrap:break-word; }
  .msg.user { border-left:4px solid var(--accent); }
  .msg.assistant { border-left:4px solid #3a3; }
  .msg.system { border-left:4px solid #aaa; color:var(--muted); }
  .msg .role { font-size:11px; text-transform:uppercase; color:var(--muted); display:block; }
  .msg .stats { font-size:11px; color:var(--muted); display:block; margin-top:4px; }
  form#send { display:flex; gap:8px; padding:10px 14px; border-top:1px solid var(--line); background:var(--panel); }
  textarea { flex:1; min-height:48px; resize:vertical; font:inherit; padding:6px; }
  button { font:inherit; padding:6px 14px; cursor:pointer; }
  aside { border-left:1px solid var(--line); background:var(--panel); overflow:auto; padding:10px 12px; }
  aside h2 { font-size:13px; margin:14px 0 6px; text-transform:uppercase; color:var(--muted); }
  label { display:grid; grid-template-columns: 110px 1fr; gap:6px; align-items:center; margin:4px 0; font-size:13px; }
  input { font:inherit; padding:3px 5px; width:100%; }
  pre { background:var(--bg); border:1px solid var(--line); padding:6px; font-size:12px; white-space:pre-wrap; word-break:break-all; max-height:220px; overflow:auto; }
  table { width:100%; font-size:12px; border-collapse:collapse; }
  td { padding:2px 0; } td:last-child { text-align:right; font-variant-numeric: tabular-nums; }
  #error { color:#b00; font-size:13px; }
</style>
</head>
<body>
<main>
  <header><h1>Weft playground</h1><span id="model">…</span><span id="error" role="alert"></span></header>
  <div id="log" aria-live="polite"></div>
  <form id="send">
    <textarea id="input" placeholder="Message (Enter sends, Shift+Enter adds a line)"></textarea>
    <div style="display:flex;flex-direction:column;gap:4px">
      <button id="send-btn" type="submit">Send</button>
      <button id="stop-btn" type="button" disabled>Stop</button>
      <button id="clear-btn" type="button">Clear</button>
    </div>
  </form>
</main>
<aside>
  <h2>Connection</h2>
  <label>API key <input id="apikey" type="password" placeholder="(none)"></label>
  <h2>System prompt</h2>
  <textarea id="system" style="width:100%" rows="2" placeholder="(none)"></textarea>
  <h2>Sampling</h2>
  <label>temperature <input id="temperature" type="number" step="0.05" min="0" max="2" value="0.7"></label>
  <label>top_p <input id="top_p" type="number" step="0.05" min="0.01" max="1" value="1"></label>
  <label>top_k <input id="top_k" type="number" step="1" min="-1" value="0"></label>
  <label>max tokens <input id="max_tokens" type="number" step="1" min="1" value="128"></label>
  <label>seed <input id="seed" type="number" step="1" placeholder="random"></label>
  <label>stop <input id="stop" type="text" placeholder="comma-separated"></label>
  <h2>Rendered prompt <span id="prompt-tokens"></span></h2>
  <pre id="rendered">(sent with the next message)</pre>
  <h2>Server metrics</h2>
  <table id="metrics"><tbody></tbody></table>
  <div id="metrics-updated" style="font-size:11px;color:var(--muted)"></div>
</aside>
<script>
(() => {
  const $ = (id) => document.getElementById(id);
  const history = [];
  let modelId = null;
  let controller = null;
  const key = localStorage.getItem('weft-api-key');
  if (key) $('apikey').value = key;
  $('apikey').addEventListener('change', () => localStorage.setItem('weft-api-key', $('apikey').value));
  const headers = () => {
    const h = { 'content-type': 'application/json' };
    if ($('apikey').value) h.authorization = 'Bearer ' + $('apikey').value;
    return h;
  };
  const showError = (msg) => { $('error').textContent = msg || ''; };

  async function loadModel() {
    try {
      const r = await fetch('/v1/models', { headers: headers() });
      const j = await r.json();
      if (!r.ok) throw new Error(j.error ? j.error.message : r.statusText);
      modelId = j.data[0].id;
      $('model').textContent = modelId + ' · context ' + (j.data[0].max_model_len ?? '?');
      showError('');
    } catch (e) { showError('models: ' + e.message); setTimeout(loadModel, 2000); }
  }

  function bubble(role, text) {
    const div = document.createElement('div');
    div.className = 'msg ' + role;
    const r = document.createElement('span'); r.className = 'role'; r.textContent = role;
    const body = document.createElement('span'); body.className = 'content'; body.textContent = text;
    div.append(r, body);
    $('log').append(div);
    $('log').scrollTop = $('log').scrollHeight;
    return div;
  }

  function messages() {
    const sys = $('system').value.trim();
    return (sys ? [{ role: 'system', content: sys }] : []).concat(history);
  }

  function params() {
    const p = { temperature: Number($('temperature').value), top_p: Number($('top_p').value), max_tokens: Number($('max_tokens').value) };
    const k = Number($('top_k').value); if (k > 0) p.top_k = k;
    if ($('seed').value !== '') p.seed = Number($('seed').value);
    const stop = $('stop').value.split(',').map((s) => s.trim()).filter(Boolean);
    if (stop.length) p.stop = stop;
    return p;
  }

  async function showRendered(msgs) {
    try {
      const r = await fetch('/v1/chat/render', { method: 'POST', headers: headers(), body: JSON.stringify({ model: modelId, messages: msgs }) });
      const j = await r.json();
      if (!r.ok) throw new Error(j.error.message);
      $('rendered').textContent = j.prompt;
      $('prompt-tokens').textContent = '(' + j.token_count + ' tokens)';
    } catch (e) { $('rendered').textContent = 'render failed: ' + e.message; }
  }

  async function send(text) {
    history.push({ role: 'user', content: text });
    bubble('user', text);
    const msgs = messages();
    void showRendered(msgs);
    const div = bubble('assistant', '');
    div.dataset.state = 'streaming';
    const content = div.querySelector('.content');
    const stats = document.createElement('span'); stats.className = 'stats'; div.append(stats);
    controller = new AbortController();
    $('stop-btn').disabled = false; $('send-btn').disabled = true;
    const t0 = performance.now();
    let tFirst = null, chunks = 0, reply = '', usage = null, finish = null;
    try {
      const r = await fetch('/v1/chat/completions', {
        method: 'POST', headers: headers(), signal: controller.signal,
        body: JSON.stringify(Object.assign({ model: modelId, messages: msgs, stream: true, stream_options: { include_usage: true } }, params())),
      });
      if (!r.ok) { const j = await r.json(); throw new Error(j.error ? j.error.message : r.statusText); }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\\n\\n')) >= 0) {
          const event = buf.slice(0, i); buf = buf.slice(i + 2);
          for (const line of event.split('\\n')) {
            if (!line.startsWith('data: ')) continue;
            const data = line.slice(6);
            if (data === '[DONE]') continue;
            const j = JSON.parse(data);
            if (j.error) throw new Error(j.error.message);
            if (j.usage) usage = j.usage;
            for (const c of j.choices || []) {
              const d = c.delta || {};
              if (d.content) {
                if (tFirst === null) tFirst = performance.now();
                reply += d.content; chunks++;
                content.textContent = reply;
                $('log').scrollTop = $('log').scrollHeight;
              }
              if (d.tool_calls) { reply += JSON.stringify(d.tool_calls); content.textContent = reply; }
              if (c.finish_reason) finish = c.finish_reason;
            }
          }
        }
      }
      const t1 = performance.now();
      const tokens = usage ? usage.completion_tokens : chunks;
      const ttft = tFirst === null ? null : (tFirst - t0);
      const decodeS = tFirst === null ? 0 : (t1 - tFirst) / 1000;
      const tps = tokens > 1 && decodeS > 0 ? ((tokens - 1) / decodeS) : null;
      stats.textContent = 'TTFT ' + (ttft === null ? '–' : ttft.toFixed(0) + ' ms') + ' · ' + tokens + ' tokens · ' +
        (tps === null ? '–' : tps.toFixed(1)) + ' tok/s · finish ' + (finish ?? '–');
      div.dataset.ttftMs = ttft === null ? '' : String(ttft);
      div.dataset.tokensPerS = tps === null ? '' : String(tps);
      history.push({ role: 'assistant', content: reply });
      showError('');
    } catch (e) {
      if (e.name === 'AbortError') { stats.textContent = 'stopped'; history.push({ role: 'assistant', content: reply }); }
      else { showError(e.message); stats.textContent = 'error: ' + e.message; history.pop(); }
    } finally {
      div.dataset.state = 'done';
      controller = null;
      $('stop-btn').disabled = true; $('send-btn').disabled = false;
    }
  }

  const WANTED = [
    ['weft:num_requests_running', 'running'], ['weft:num_requests_waiting', 'waiting'], ['weft:kv_cache_usage_perc', 'KV cache used'],
    ['weft:prompt_tokens_total', 'prompt tokens'], ['weft:generation_tokens_total', 'generated tokens'],
    ['weft:prefix_cache_hits_total', 'prefix-cache hits'], ['weft:prefix_cache_queries_total', 'prefix-cache queries'],
    ['weft:time_to_first_token_seconds', 'mean TTFT (s)'], ['weft:inter_token_latency_seconds', 'mean ITL (s)'],
    ['weft:e2e_request_latency_seconds', 'mean e2e (s)'], ['weft:request_success_total', 'finished requests'],
  ];
  function parseMetrics(text) {
    const sums = {};
    for (const line of text.split('\\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([^\\s{]+)(\\{[^}]*\\})?\\s+(\\S+)/.exec(line);
      if (!m) continue;
      sums[m[1]] = (sums[m[1]] || 0) + Number(m[3]);
    }
    return sums;
  }
  async function pollMetrics() {
    try {
      const r = await fetch('/metrics', { headers: headers() });
      if (r.ok) {
        const s = parseMetrics(await r.text());
        const rows = WANTED.map(([name, label]) => {
          let v = s[name];
          if (v === undefined && s[name + '_sum'] !== undefined) {
            const c = s[name + '_count'];
            v = c > 0 ? s[name + '_sum'] / c : 0;
          }
          if (v === undefined) return '';
          const shown = name.endsWith('_perc') ? (100 * v).toFixed(1) + ' %' : Number.isInteger(v) ? String(v) : v.toFixed(4);
          return '<tr data-metric="' + name + '"><td>' + label + '</td><td>' + shown + '</td></tr>';
        });
        document.querySelector('#metrics tbody').innerHTML = rows.join('');
        $('metrics-updated').textContent = 'updated ' + new Date().toLocaleTimeString();
      }
    } catch { /* server restarting: try again */ }
    setTimeout(pollMetrics, 1000);
  }

  $('send').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('input').value.trim();
    if (!text || controller) return;
    $('input').value = '';
    void send(text);
  });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('send').requestSubmit(); }
  });
  $('stop-btn').addEventListener('click', () => controller && controller.abort());
  $('clear-btn').addEventListener('click', () => { history.length = 0; $('log').innerHTML = ''; });
  void loadModel();
  void pollMetrics();
})();
</script>
</body>
</html>
`;
