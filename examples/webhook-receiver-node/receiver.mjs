// Receives pay-sidecar's webhooks and verifies their Standard Webhooks signatures (Node.js 18+, no packages).
// WEBHOOK_SECRET: the sidecar's PAYSIDECAR_WEBHOOK_SECRET (whsec_...). HOST and PORT: where to listen
// (default 127.0.0.1 and 8082).
// Point the sidecar at it with PAYSIDECAR_WEBHOOK_URL=http://127.0.0.1:8082/webhooks.
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const secret = Buffer.from(process.env.WEBHOOK_SECRET.replace(/^whsec_/, ""), "base64");
const tolerance = 5 * 60; // seconds: older or newer timestamps are refused (replays)
const seen = new Set(); // webhook-id: delivery is at least once, so handle each event once (use your database in production)

// Throws unless one of the signatures matches. During a secret rotation the sidecar sends two (new and
// previous), space-separated; any one that matches is enough.
function verify(headers, body) {
  const id = headers["webhook-id"], timestamp = headers["webhook-timestamp"], signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) throw new Error("missing webhook headers");
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > tolerance) throw new Error("timestamp outside the tolerance");
  const expected = createHmac("sha256", secret).update(`${id}.${timestamp}.`).update(body).digest();
  for (const signature of signatures.split(" ")) {
    const [version, value] = signature.split(",");
    const given = Buffer.from(value ?? "", "base64");
    if (version === "v1" && given.length === expected.length && timingSafeEqual(given, expected)) return JSON.parse(body.toString("utf8"));
  }
  throw new Error("no matching signature");
}

const host = process.env.HOST ?? "127.0.0.1";
const port = Number(process.env.PORT ?? 8082);
createServer((request, response) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    let event;
    try {
      event = verify(request.headers, Buffer.concat(chunks));
    } catch (error) {
      console.log(`refused: ${error.message}`);
      response.writeHead(400).end();
      return;
    }
    const id = request.headers["webhook-id"];
    if (seen.has(id)) {
      console.log(`duplicate ${id}, already handled`);
    } else {
      seen.add(id);
      console.log(`verified ${event.type} mrn=${event.data.mrn} amount=${event.data.amount} source=${event.data.source} id=${id}`);
    }
    response.writeHead(204).end(); // any 2xx within the timeout counts as delivered
  });
}).listen(port, host, () => console.log(`listening on http://${host}:${port}/webhooks`));
