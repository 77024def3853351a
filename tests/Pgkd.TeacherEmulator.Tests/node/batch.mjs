// Runs one Batch API job against the teacher emulator with the npm `openai` package (a client written outside this
// project), on the OpenAI route (OpenAI class, endpoint /v1/chat/completions) and the Azure route (AzureOpenAI class,
// endpoint /chat/completions): upload a JSONL file to /files, create a batch, poll it, download its output.
// Usage: node batch.mjs <emulator base url> <api key> <path to node_modules holding openai>
import { createRequire } from 'node:module';
import path from 'node:path';

const [baseUrl, apiKey, modulesDir] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, 'noop.js'));
const { OpenAI, AzureOpenAI, toFile } = require('openai');

const messages = [
  { role: 'system', content: 'You write labeled training examples. Reply with JSON only.' },
  { role: 'user', content: 'Write 4 new examples of short news texts.' },
];

async function run(route, client, url, model) {
  const lines = [1, 2, 3].map(i => JSON.stringify({
    custom_id: `request-${i}`, method: 'POST', url,
    body: { model, messages, response_format: { type: 'json_object' }, user: `node-batch-${route}` },
  }));
  const file = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'requests.jsonl'), purpose: 'batch' });
  let batch = await client.batches.create({ input_file_id: file.id, endpoint: url, completion_window: '24h' });
  const seen = [batch.status];
  for (let i = 0; i < 600 && !['completed', 'failed', 'cancelled', 'expired'].includes(batch.status); i++) {
    await new Promise(r => setTimeout(r, 100));
    batch = await client.batches.retrieve(batch.id);
    if (seen[seen.length - 1] !== batch.status) seen.push(batch.status);
  }
  const output = batch.output_file_id ? await (await client.files.content(batch.output_file_id)).text() : '';
  const results = output.split('\n').filter(l => l.length > 0).map(l => JSON.parse(l));
  console.log(JSON.stringify({
    route, file: file.id, purpose: file.purpose, batch: batch.id, status: batch.status, statuses: seen,
    counts: batch.request_counts,
    results: results.map(r => ({ custom_id: r.custom_id, status_code: r.response.status_code, content: r.response.body.choices[0].message.content, usage: r.response.body.usage })),
  }));
}

await run('openai', new OpenAI({ apiKey, baseURL: new URL('v1', baseUrl).toString(), maxRetries: 0 }), '/v1/chat/completions', 'gpt-4o-mini');
await run('azure', new AzureOpenAI({ endpoint: baseUrl, apiKey, apiVersion: '2024-10-21', maxRetries: 0 }), '/chat/completions', 'pgkd-teacher');
