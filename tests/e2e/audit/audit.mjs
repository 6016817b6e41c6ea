// Runs graphql-http's server audits against a URL and prints one JSON line of results.
//   node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const url = process.argv[2];
if (!url || !url.startsWith('http://127.0.0.1:')) {
  console.error('usage: node audit.mjs http://127.0.0.1:PORT/graphql');
  process.exit(2);
}
const results = await auditServer({ url });
const summary = [];
for (const result of results) {
  const entry = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    entry.reason = result.reason;
    if (result.response) {
      entry.responseStatus = result.response.status;
      entry.responseBody = (await result.response.text()).slice(0, 500);
    }
  }
  summary.push(entry);
}
console.log(JSON.stringify(summary));
