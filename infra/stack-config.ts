/** Reads the raw stack config from the Pulumi runtime and validates it (the imperative edge of config.ts). */
import * as pulumi from "@pulumi/pulumi";
import { parseStackConfig, StackConfig } from "./config";

type ConfigRuntime = { isConfigSecret?: (key: string) => boolean };

export function loadStackConfig(): StackConfig {
  const raw = pulumi.runtime.allConfig();
  const runtime = pulumi.runtime as unknown as ConfigRuntime;
  const secretKeys = Object.keys(raw).filter((k) => runtime.isConfigSecret?.(k) ?? false);
  return parseStackConfig(pulumi.getStack(), raw, secretKeys);
}
