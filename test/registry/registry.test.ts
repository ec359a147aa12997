import { exposedSeriesNames, loadRegistry, parseRegistry, queryableMetricNames } from "../../registry";

const minimal = (metric: string) => `
service:
${metric}
defaults: [process_cpu_seconds_total]
exporters:
  prometheus: [up]
`;

describe("telemetry registry", () => {
  it("loads the committed registry", () => {
    const registry = loadRegistry();
    expect(registry.service.length).toBeGreaterThan(20);
    expect(registry.service.map((m) => m.name)).toContain("knhk_receipt_chain_breaks_total");
  });

  it("exposes _bucket/_sum/_count for histograms and the name itself otherwise", () => {
    const names = queryableMetricNames();
    expect(names.has("knhk_hot_path_ticks_bucket")).toBe(true);
    expect(names.has("knhk_hot_path_ticks")).toBe(false);
    expect(names.has("knhk_http_requests_total")).toBe(true);
    expect(names.has("patroni_primary")).toBe(true);
    const histogram = loadRegistry().service.find((m) => m.type === "histogram")!;
    expect(exposedSeriesNames(histogram)).toHaveLength(3);
  });

  it("rejects a counter without _total, naming the metric", () => {
    expect(() =>
      parseRegistry(minimal("  - { name: knhk_things, type: counter, unit: x, help: h, labels: {} }")),
    ).toThrow(/knhk_things must end in _total/);
  });

  it("rejects a histogram without buckets", () => {
    expect(() =>
      parseRegistry(minimal("  - { name: knhk_latency_seconds, type: histogram, unit: s, help: h, labels: {} }")),
    ).toThrow(/needs buckets/);
  });

  it("rejects unknown fields and bad names with the path", () => {
    expect(() =>
      parseRegistry(minimal("  - { name: knhk_x_total, type: counter, unit: x, help: h, labels: {}, colour: red }")),
    ).toThrow(/service\.0/);
    expect(() => parseRegistry(minimal("  - { name: Bad-Name, type: gauge, unit: x, help: h, labels: {} }"))).toThrow(
      /service\.0\.name/,
    );
  });

  it("rejects a metric declared twice", () => {
    const metric = "  - { name: knhk_a_total, type: counter, unit: x, help: h, labels: {} }";
    expect(() => parseRegistry(minimal(`${metric}\n${metric}`))).toThrow(/declared twice/);
  });
});
