// One peer of bench/peers.py: the npm library `apns2` sending APNs
// notifications to the bench mock, in this one Node process.
//
//   NODE_PATH=<prefix>/node_modules NODE_EXTRA_CA_CERTS=<mock cert> \
//     node bench/peer_apns2.js https://127.0.0.1:<port> N BATCH
//
// Token auth with an EC (P-256) key made here. It sends 100 notifications
// (connections, the JWT), prints "ready", waits for "go" on stdin, sends N
// notifications with `sendMany`, BATCH at a time (apns2 has no concurrency
// setting: its undici Pool decides), then prints
// "done <delivered> <failed> {"connections": <open connections>}" and exits.
//
// apns2 12 always connects to `https://<host>:443`: the one change made to
// it here is the port of that origin (undici's Pool, as apns2 builds it with
// every option it passes, pointed at the mock's port instead of 443).
'use strict';

const crypto = require('node:crypto');
const readline = require('node:readline');
const undici = require('undici'); // the copy apns2 itself requires (NODE_PATH)

const [origin, total, batch] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const WARMUP = 100;

const { Pool } = undici;
undici.Pool = class MockPortPool extends Pool {
  constructor(apnsOrigin, options) {
    if (apnsOrigin !== 'https://127.0.0.1:443') throw new Error(`unexpected apns2 origin ${apnsOrigin}`);
    super(origin, options);
  }
};
const { ApnsClient, Notification } = require('apns2');

const { privateKey } = crypto.generateKeyPairSync('ec', {
  namedCurve: 'prime256v1',
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const client = new ApnsClient({
  team: 'TEAM123456', keyId: 'BENCH12345', signingKey: privateKey,
  defaultTopic: 'com.example.bench', host: '127.0.0.1',
});

// The body pushlite's bench sends: {"aps":{"alert":{...}},"data":{"id":42}}.
function notifications(prefix, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const token = prefix + i.toString(16).padStart(60, '0'); // 64 hex digits
    out.push(new Notification(token, { alert: { title: 'Hello', body: 'Hello, world!' }, data: { data: { id: 42 } } }));
  }
  return out;
}

async function send(list) {
  const results = await client.sendMany(list);
  let failed = 0;
  for (const result of results) {
    if (result.error) {
      failed += 1;
      if (failed === 1) process.stderr.write(`apns2 error: ${result.error.reason || result.error}\n`);
    }
  }
  return [results.length - failed, failed];
}

async function main() {
  const [, warmFailed] = await send(notifications('ffff', WARMUP));
  if (warmFailed) throw new Error(`${warmFailed} warm-up notifications failed`);
  const batches = [];
  for (let b = 0; b * batch < total; b++) {
    batches.push(notifications(b.toString(16).padStart(4, '0'), Math.min(batch, total - b * batch)));
  }
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('close', () => process.exit(2)); // the bench went away
  await new Promise((resolve) => lines.on('line', (line) => line === 'go' && resolve()));
  let delivered = 0;
  let failed = 0;
  for (const list of batches) {
    const [ok, bad] = await send(list);
    delivered += ok;
    failed += bad;
  }
  const connections = client.client.stats.connected; // undici's Pool: apns2 allows 32, one request in flight on each
  process.stdout.write(`done ${delivered} ${failed} ${JSON.stringify({ connections })}\n`);
  await client.close();
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
