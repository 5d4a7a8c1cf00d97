// Baseline for bench/webhook_throughput.py: the least a Gather webhook can do.
// Parses the form body and answers a <Say> TwiML; no signature check, no storage.
// Listens on 127.0.0.1 (port from argv[2], default 0 = free) and prints the port on stdout.
//
//     node bench/baselines/node_twiml_server.js 0

"use strict";

const http = require("http");

const escapeXml = (text) =>
  text.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
    const heard = escapeXml(form.get("SpeechResult") || "");
    const body =
      '<?xml version="1.0" encoding="UTF-8"?><Response>' +
      `<Say>You said: ${heard}. Thanks, I'll pass that on. Goodbye.</Say><Hangup/></Response>`;
    response.writeHead(200, { "Content-Type": "application/xml", "Content-Length": Buffer.byteLength(body) });
    response.end(body);
  });
});

server.keepAliveTimeout = 30000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
