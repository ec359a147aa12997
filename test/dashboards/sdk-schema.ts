/**
 * JSON schemas generated from the Grafana Foundation SDK's own TypeScript types (the installed
 * @grafana/grafana-foundation-sdk), so the dashboards are checked against the SDK version they
 * are built with: the dashboard model, the timeseries/stat panel options and field config, and
 * the Prometheus query.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import { createGenerator } from "ts-json-schema-generator";

export const SDK_TYPES = ["KnhkDashboard", "TimeseriesOptions", "TimeseriesFieldConfig", "StatOptions", "PrometheusQuery"] as const;
export type SdkType = (typeof SDK_TYPES)[number];

export function sdkValidators(): Record<SdkType, ValidateFunction> {
  const dist = dirname(dirname(require.resolve("@grafana/grafana-foundation-sdk/dashboard")));
  const dir = mkdtempSync(join(tmpdir(), "knhk-sdk-schema-"));
  try {
    const entry = join(dir, "types.ts");
    writeFileSync(
      entry,
      [
        `import type { Dashboard as D } from "${dist}/dashboard/types.gen";`,
        `import type { Options as TO, FieldConfig as TF } from "${dist}/timeseries/types.gen";`,
        `import type { Options as SO } from "${dist}/stat/types.gen";`,
        `import type { dataquery as PQ } from "${dist}/prometheus/types.gen";`,
        "export type KnhkDashboard = D;",
        "export type TimeseriesOptions = TO;",
        "export type TimeseriesFieldConfig = TF;",
        "export type StatOptions = SO;",
        "export type PrometheusQuery = PQ;",
      ].join("\n"),
    );
    const generator = createGenerator({ path: entry, skipTypeCheck: true, additionalProperties: false, expose: "export", topRef: true });
    const ajv = new Ajv({ allErrors: true, strict: false });
    const schemas = SDK_TYPES.map((t) => {
      const schema = generator.createSchema(t) as { definitions?: Record<string, unknown> };
      // cog.Dataquery is the SDK's marker for "the query type of the panel's datasource"; the
      // targets are validated against the Prometheus query type instead.
      if (schema.definitions?.Dataquery) schema.definitions.Dataquery = { type: "object" };
      return [t, ajv.compile(schema)] as const;
    });
    return Object.fromEntries(schemas) as Record<SdkType, ValidateFunction>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function schemaErrors(validate: ValidateFunction, value: unknown): string[] {
  return validate(value) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? ""} ${JSON.stringify(e.params)}`);
}
