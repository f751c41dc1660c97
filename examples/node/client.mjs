// A client of pay-sidecar's internal API for Node.js 18+ (built-in fetch): a deposit, a payout, two queries.
// SIDECAR_URL (default http://127.0.0.1:8080) and, if the sidecar requires one, PAYSIDECAR_API_TOKEN.
const api = (process.env.SIDECAR_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
const token = process.env.PAYSIDECAR_API_TOKEN;

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(api + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, answer: await response.json() };
}

// An unknown outcome is retried with the SAME body: the sidecar journals every mrn, so this never pays twice.
async function create(path, body) {
  let result;
  for (let attempt = 0; attempt < 3; attempt++) {
    result = await call("POST", path, body);
    if (result.status < 500 || result.answer.orderStatus !== "unknown") break;
    await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempt));
  }
  console.log(`POST ${path} -> ${result.status} ${JSON.stringify(result.answer)}`);
  if (result.status >= 300) throw new Error(`${result.answer.code}: ${result.answer.detail}`);
  return result.answer;
}

const run = `${Date.now()}-${process.pid}`;
// Amounts travel as strings or integers, never floats: "100.50" is signed exactly as written.
await create("/v1/deposits", { mrn: `D-js-${run}`, amount: "100.50", channelId: 2, returnUrl: "https://shop.example/return" });
await create("/v1/payouts", { mrn: `P-js-${run}`, amount: 500, bankName: "中国工商银行", accountName: "张三", accountNumber: "6222020200112233445" });
for (const path of [`/v1/deposits/D-js-${run}`, `/v1/payouts/P-js-${run}`]) {
  const { status, answer } = await call("GET", path);
  console.log(`GET ${path} -> ${status} ${JSON.stringify(answer)}`);
  if (status !== 200) process.exit(1);
}
