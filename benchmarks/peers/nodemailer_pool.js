// nodemailer's pooled SMTP transport sending to a sink on 127.0.0.1.
//   node nodemailer_pool.js PORT MESSAGES CONNECTIONS [CONTENTS.json]   -> one JSON line
// Without CONTENTS: ready ~4 KB messages (`raw`), nodemailer only frames and sends them.
// With CONTENTS (a JSON list of {subject, html, text}, Letterhead's rendered order confirmations): nodemailer
// composes every message itself (its usual sendMail with html + text), one content per recipient in turn.
// nodemailer itself is installed by run_peers.py into a temporary folder (npm install), never committed.
"use strict";
const nodemailer = require("nodemailer");

const [port, count, connections] = process.argv.slice(2, 5).map(Number);
const contents = process.argv[5] ? JSON.parse(require("fs").readFileSync(process.argv[5], "utf8")) : null;
const line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor inc.\r\n";

function raw(i) {
  const head =
    `From: ACME <shop@acme.example>\r\nTo: customer${i}@example.com\r\nSubject: Your order ${i}\r\n` +
    `Message-ID: <${i}.nodemailer@letterhead.example>\r\nMIME-Version: 1.0\r\n` +
    "Content-Type: text/plain; charset=utf-8\r\n\r\n.leading dot\r\n";
  return head + line.repeat(Math.max(1, Math.floor((4096 - head.length) / line.length)));
}

async function main() {
  const transport = nodemailer.createTransport({
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: connections,
    maxMessages: Infinity,
  });
  // Pre-rendered bytes, like the other peers (nodemailer only frames and sends them), or contents to compose.
  const messages = Array.from({ length: count }, (_, i) => (contents ? {
    from: { name: "ACME 株式会社", address: "shop@acme.example" },
    to: `customer${i}@example.com`,
    ...contents[i % contents.length],
  } : {
    envelope: { from: "shop@acme.example", to: [`customer${i}@example.com`] },
    raw: raw(i),
  }));
  const warm = Array.from({ length: connections }, (_, i) => transport.sendMail({
    envelope: { from: "shop@acme.example", to: ["warm@example.com"] }, raw: raw(count + i),
  }));
  await Promise.all(warm);
  const t0 = process.hrtime.bigint();
  const results = await Promise.allSettled(messages.map((m) => transport.sendMail(m)));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  transport.close();
  const sent = results.filter((r) => r.status === "fulfilled").length;
  console.log(JSON.stringify({
    peer: contents ? "nodemailer pool, composing" : "nodemailer pool", connections, messages: count, warmup_messages: connections, sent,
    seconds: Number(seconds.toFixed(3)), msgs_per_sec: Number((count / seconds).toFixed(1)),
    message_bytes: contents ? null : Buffer.byteLength(messages[0].raw), nodemailer: require("nodemailer/package.json").version,
    node: process.version,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
