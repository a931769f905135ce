// Benchmark-grade provider mock: one h2c (HTTP/2, prior knowledge) server on
// 127.0.0.1 that answers like APNs and FCM as fast as it can. It checks
// nothing; use tests/mocks/ for behaviour. Node 20, no npm packages.
//
//   node bench/mock_providers.js PORT [--seq] [--tls CERT_FILE KEY_FILE]
//
//   POST /3/device/<token>                   -> 200, apns-id header (the request's, as APNs does) (APNs)
//   POST /v1/projects/<id>/messages:send     -> 200 {"name": ...}    (FCM)
//   POST /token                              -> 200 {"access_token", "expires_in": 3600, "token_type": "Bearer"}
//   POST /wpush/<id>                         -> 201, location header (a browser push service)
//   anything else                            -> 404
//
// Prints "listening <port>" once ready, and the request counts as JSON on
// SIGTERM / SIGINT before exiting (and on SIGUSR2 without exiting). With --tls, the same answers are also
// served over HTTP/2 with TLS (ALPN h2) on a second port, printed as
// "tls <port>" on the next line: browsers' push endpoints are https.
//
// --seq (for bench/delivery_latency.py): for every APNs or FCM request whose
// JSON body carries a `seq` (APNs: top level; FCM: message.data.seq), also
// print "seq <seq> <ms>" when the whole request has arrived, <ms> being wall
// clock milliseconds (performance.timeOrigin + performance.now()).
'use strict';

const http2 = require('node:http2');
const crypto = require('node:crypto');

const fs = require('node:fs');

const port = Number(process.argv[2] || 0);
const options = process.argv.slice(3);
const logSeq = options.includes('--seq');
const tlsAt = options.indexOf('--tls');
const counts = { apns: 0, fcm: 0, web: 0, token: 0, other: 0 };
let messageId = 0;

const serverOptions = {
  settings: { maxConcurrentStreams: 1000, initialWindowSize: 1 << 20 },
  peerMaxConcurrentStreams: 1000,
};
const server = http2.createServer(serverOptions);
const tlsServer = tlsAt < 0 ? null : http2.createSecureServer({
  ...serverOptions,
  cert: fs.readFileSync(options[tlsAt + 1]),
  key: fs.readFileSync(options[tlsAt + 2]),
  allowHTTP1: false,
});

function finish(stream, status, headers, body) {
  if (stream.destroyed || stream.closed) return;
  stream.respond({ ':status': status, ...headers }, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
}

function onStream(stream, headers) {
  const method = headers[':method'];
  const path = headers[':path'] || '';
  stream.on('error', () => {});
  // Drain the request body, answer when it has all arrived.
  const chunks = [];
  stream.on('data', logSeq ? (chunk) => chunks.push(chunk) : () => {});
  stream.on('end', () => {
    if (logSeq && chunks.length) printSeq(Buffer.concat(chunks), performance.timeOrigin + performance.now());
    if (method === 'POST' && path.startsWith('/3/device/')) {
      counts.apns += 1;
      // Like APNs: the request's apns-id when it sent one, else a new one.
      finish(stream, 200, { 'apns-id': headers['apns-id'] || crypto.randomUUID() });
    } else if (method === 'POST' && /^\/v1\/projects\/[^/]+\/messages:send$/.test(path)) {
      counts.fcm += 1;
      const project = path.split('/')[3];
      messageId += 1;
      finish(stream, 200, { 'content-type': 'application/json' },
        JSON.stringify({ name: `projects/${project}/messages/${messageId}` }));
    } else if (method === 'POST' && path.startsWith('/wpush/')) {
      counts.web += 1;
      messageId += 1;
      finish(stream, 201, { location: `/message/${messageId}` });
    } else if (method === 'POST' && path === '/token') {
      counts.token += 1;
      finish(stream, 200, { 'content-type': 'application/json' },
        JSON.stringify({ access_token: `ya29.bench-${crypto.randomBytes(12).toString('hex')}`, expires_in: 3600, token_type: 'Bearer' }));
    } else {
      counts.other += 1;
      finish(stream, 404, { 'content-type': 'application/json' }, JSON.stringify({ reason: 'BadPath' }));
    }
  });
}

server.on('stream', onStream);
server.on('sessionError', () => {});
if (tlsServer) {
  tlsServer.on('stream', onStream);
  tlsServer.on('sessionError', () => {});
}

function printSeq(body, receivedMs) {
  let parsed;
  try { parsed = JSON.parse(body); } catch { return; }
  const seq = parsed && (parsed.seq ?? (parsed.message && parsed.message.data && parsed.message.data.seq));
  if (seq !== undefined && seq !== null) process.stdout.write(`seq ${seq} ${receivedMs.toFixed(3)}\n`);
}

function stop() {
  const total = counts.apns + counts.fcm + counts.web + counts.token + counts.other;
  process.stdout.write(JSON.stringify({ total, ...counts }) + '\n');
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The counts so far, without stopping.
process.on('SIGUSR2', () => {
  const total = counts.apns + counts.fcm + counts.web + counts.token + counts.other;
  process.stdout.write(JSON.stringify({ total, ...counts }) + '\n');
});

server.listen(port, '127.0.0.1', () => {
  if (!tlsServer) {
    process.stdout.write(`listening ${server.address().port}\n`);
    return;
  }
  tlsServer.listen(0, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\ntls ${tlsServer.address().port}\n`);
  });
});
