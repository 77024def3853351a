// Completes one chat against the teacher emulator with the npm `openai` package (a client written outside
// this project), on the OpenAI route (OpenAI class) and the Azure route (AzureOpenAI class).
// Usage: node chat.mjs <emulator base url> <api key> <path to node_modules holding openai>
import { createRequire } from 'node:module';
import path from 'node:path';

const [baseUrl, apiKey, modulesDir] = process.argv.slice(2);
const require = createRequire(path.join(modulesDir, 'noop.js'));
const { OpenAI, AzureOpenAI } = require('openai');

const messages = [
  { role: 'system', content: 'You write labeled training examples. Reply with JSON only.' },
  { role: 'user', content: 'Write 4 new examples of short news texts.' },
];

const openai = new OpenAI({ apiKey, baseURL: new URL('v1', baseUrl).toString(), maxRetries: 0 });
const a = await openai.chat.completions.create({
  model: 'gpt-4o-mini', messages, response_format: { type: 'json_object' }, user: 'node-run',
});
console.log(JSON.stringify({ route: 'openai', content: a.choices[0].message.content, usage: a.usage, model: a.model }));

const azure = new AzureOpenAI({ endpoint: baseUrl, apiKey, apiVersion: '2024-10-21', deployment: 'pgkd-teacher', maxRetries: 0 });
const b = await azure.chat.completions.create({
  model: 'pgkd-teacher', messages, response_format: { type: 'json_object' }, user: 'node-run',
});
console.log(JSON.stringify({ route: 'azure', content: b.choices[0].message.content, usage: b.usage, model: b.model }));
