/**
 * The deploy watch against a real Prometheus (Debian package) on loopback, scraping two fake
 * KNHK pods (one per colour) every second: the PromQL the deploy uses computes the error ratio
 * and p95 per colour, and the watch fails the colour whose error ratio is above 1%.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PrometheusHttp } from "../../scripts/lib/deploy/adapters";
import { systemClock } from "../../scripts/lib/deploy/ports";
import { DEFAULT_WATCH, errorRatioQuery, p95Query, watchColor } from "../../scripts/lib/deploy/watch";
import { freePort, waitFor } from "../support/ports";
import { spawnTracked, type TrackedProcess } from "../support/processes";

/** A pod's /metrics whose counters grow by a fixed amount per scrape: `ok` 2xx and `errors` 5xx requests. */
function fakePod(perScrape: { ok: number; errors: number; fast: number }): Server {
  let scrapes = 0;
  return createServer((_req, res) => {
    scrapes++;
    const ok = scrapes * perScrape.ok;
    const errors = scrapes * perScrape.errors;
    const total = ok + errors;
    const fast = scrapes * perScrape.fast;
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(
      [
        "# TYPE knhk_http_requests_total counter",
        `knhk_http_requests_total{method="GET",route="/api/v1/observations",status_class="2xx"} ${ok}`,
        ...(perScrape.errors > 0 ? [`knhk_http_requests_total{method="GET",route="/api/v1/observations",status_class="5xx"} ${errors}`] : []),
        "# TYPE knhk_http_request_duration_seconds histogram",
        `knhk_http_request_duration_seconds_bucket{method="GET",route="/api/v1/observations",le="0.05"} ${fast}`,
        `knhk_http_request_duration_seconds_bucket{method="GET",route="/api/v1/observations",le="0.1"} ${total}`,
        `knhk_http_request_duration_seconds_bucket{method="GET",route="/api/v1/observations",le="+Inf"} ${total}`,
        `knhk_http_request_duration_seconds_count{method="GET",route="/api/v1/observations"} ${total}`,
        `knhk_http_request_duration_seconds_sum{method="GET",route="/api/v1/observations"} ${total * 0.05}`,
        "",
      ].join("\n"),
    );
  });
}

const listen = (server: Server, port: number) => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

let dir: string;
let prometheus: TrackedProcess | undefined;
let prom: PrometheusHttp;
const pods: Server[] = [];
const WINDOW = { job: "knhk-service", window: "10s" };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "knhk-prom-"));
  // green: 95 ok + 5 errors per scrape (5% errors), 90 of 100 requests under 50 ms -> p95 75 ms.
  // blue: 100 ok, no errors, every request under 50 ms.
  const [greenPort, bluePort, promPort] = [await freePort(), await freePort(), await freePort()];
  pods.push(fakePod({ ok: 95, errors: 5, fast: 90 }), fakePod({ ok: 100, errors: 0, fast: 100 }));
  await listen(pods[0], greenPort);
  await listen(pods[1], bluePort);
  writeFileSync(
    join(dir, "prometheus.yml"),
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      "scrape_configs:",
      "  - job_name: knhk-service",
      "    static_configs:",
      `      - targets: ["127.0.0.1:${greenPort}"]`,
      "        labels: { pod: knhk-green-5d8f7c9b6-x2k4p }",
      `      - targets: ["127.0.0.1:${bluePort}"]`,
      "        labels: { pod: knhk-blue-7c6d5b4a3-q9w8e }",
      "",
    ].join("\n"),
  );
  prometheus = spawnTracked("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: "ignore" });
  const url = `http://127.0.0.1:${promPort}`;
  await waitFor("prometheus ready", async () => (await fetch(`${url}/-/ready`)).ok, 60_000, 250);
  prom = new PrometheusHttp(url);
  // Rates need a few samples of both pods inside the window.
  await waitFor("rates of both colours", async () => (await prom.query(errorRatioQuery("blue", WINDOW))) !== undefined && (await prom.query(p95Query("green", WINDOW))) !== undefined, 60_000, 500);
}, 120_000);

afterAll(async () => {
  await prometheus?.stop("SIGTERM");
  for (const pod of pods) pod.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("deploy PromQL on a real Prometheus", () => {
  test("error ratio and p95 per colour", async () => {
    expect(await prom.query(errorRatioQuery("green", WINDOW))).toBeCloseTo(0.05, 3);
    expect(await prom.query(errorRatioQuery("blue", WINDOW))).toBe(0);
    expect(await prom.query(p95Query("green", WINDOW))).toBeCloseTo(0.075, 3);
    expect(await prom.query(p95Query("blue", WINDOW))).toBeLessThanOrEqual(0.05);
  });

  test("a colour without pods has no data; a bad query is an error naming Prometheus", async () => {
    expect(await prom.query(errorRatioQuery("green", { ...WINDOW, job: "no-such-job" }))).toBeUndefined();
    await expect(prom.query("sum(rate(")).rejects.toThrow(/^Prometheus: .*parse error/);
  });

  test("the watch fails green (5% errors) and passes blue", async () => {
    const log = { info: () => undefined, warn: () => undefined };
    const options = { ...DEFAULT_WATCH, ...WINDOW, durationMs: 2000, intervalMs: 1000 };
    const green = await watchColor("green", { prometheus: prom, clock: systemClock, log }, options);
    expect(green).toMatchObject({ healthy: false, reason: expect.stringMatching(/^error ratio 5\.\d\d% on green exceeds 1\.00%$/) });
    const blue = await watchColor("blue", { prometheus: prom, clock: systemClock, log }, options);
    expect(blue).toMatchObject({ healthy: true, warnings: [] });
    expect(blue.samples).toHaveLength(2);
  }, 30_000);
});
