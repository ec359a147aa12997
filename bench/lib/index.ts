/**
 * Shared benchmark utilities. Typical use:
 *
 *   const m = measureNsPerOp(() => { for (...) work(); return ops; }, { warmup: 3, repetitions: 9 });
 *   printTable([{ name: "x", median_ns: m.summary.median, min: m.summary.min, max: m.summary.max }]);
 *   writeResult("name", { ... });   // -> bench/results/name.json with machine info
 *
 * `pinnedCommand` prefixes a child command with `taskset -c CPU` when taskset exists.
 */
export * from "./stats";
export * from "./run";
export * from "./machine";
export * from "./results";
export * from "./table";
export * from "./pin";
