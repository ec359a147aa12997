/** `knhk:namespace`: the namespace, its quota, limit range and network allows. */
import { z } from "zod";
import { cpuQuantity, dnsLabel, memoryQuantity } from "./common";

export const namespaceSection = z
  .object({
    name: dnsLabel.default("knhk"),
    quota: z
      .object({
        requestsCpu: cpuQuantity.default("16"),
        requestsMemory: memoryQuantity.default("32Gi"),
        limitsCpu: cpuQuantity.default("48"),
        limitsMemory: memoryQuantity.default("96Gi"),
        requestsStorage: memoryQuantity.default("1Ti"),
        persistentVolumeClaims: z.number().int().min(0).default(20),
        pods: z.number().int().min(1).default(60),
      })
      .strict()
      .prefault({}),
    /** Defaults for containers that omit requests/limits (every container here sets them). */
    limitRange: z
      .object({
        defaultRequestCpu: cpuQuantity.default("100m"),
        defaultRequestMemory: memoryQuantity.default("128Mi"),
        defaultLimitCpu: cpuQuantity.default("500m"),
        defaultLimitMemory: memoryQuantity.default("512Mi"),
        maxCpu: cpuQuantity.default("4"),
        maxMemory: memoryQuantity.default("16Gi"),
      })
      .strict()
      .prefault({}),
    /** Namespace of Prometheus (allowed to scrape metrics ports). */
    monitoringNamespace: dnsLabel.default("monitoring"),
    /** Namespace of the ingress controller (allowed to reach the API port 8080). */
    ingressNamespace: dnsLabel.default("ingress-nginx"),
  })
  .strict();
export type NamespaceConfig = z.infer<typeof namespaceSection>;
