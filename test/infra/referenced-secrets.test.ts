/** referencedSecrets: the Secrets a set of objects reads and does not create, found in the objects themselves. */
import { referencedSecrets, type ObjectLike } from "../../infra/render/referenced-secrets";
import { renderStack } from "../../infra/testing/render";

const pod = (spec: Record<string, unknown>): ObjectLike => ({
  apiVersion: "apps/v1",
  kind: "StatefulSet",
  metadata: { name: "db", namespace: "ns" },
  spec: { template: { spec } },
});

describe("referencedSecrets", () => {
  test("env keys, envFrom, whole-volume mounts, volume items and projected sources", () => {
    const found = referencedSecrets([
      pod({
        containers: [
          { env: [{ name: "A", valueFrom: { secretKeyRef: { name: "creds", key: "password" } } }, { name: "B", valueFrom: { configMapKeyRef: { name: "cm", key: "x" } } }] },
          { envFrom: [{ secretRef: { name: "all-of-it" } }, { configMapRef: { name: "cm" } }] },
        ],
        volumes: [
          { name: "tls", secret: { secretName: "db-tls" } },
          { name: "one", secret: { secretName: "creds", items: [{ key: "token", path: "t" }] } },
          { name: "p", projected: { sources: [{ secret: { name: "proj", items: [{ key: "k", path: "k" }] } }, { configMap: { name: "cm" } }] } },
        ],
      }),
    ]);
    expect(found).toEqual([
      { namespace: "ns", name: "all-of-it", keys: [], mounted: false },
      { namespace: "ns", name: "creds", keys: ["password", "token"], mounted: false },
      { namespace: "ns", name: "db-tls", keys: [], mounted: true },
      { namespace: "ns", name: "proj", keys: ["k"], mounted: false },
    ]);
  });

  test("prometheus-operator selectors under any field name, but not ConfigMap selectors", () => {
    const found = referencedSecrets([
      {
        apiVersion: "monitoring.coreos.com/v1alpha1",
        kind: "AlertmanagerConfig",
        metadata: { name: "routes", namespace: "ns" },
        spec: {
          receivers: [
            { name: "pager", pagerdutyConfigs: [{ routingKey: { name: "receivers", key: "pd" } }] },
            { name: "chat", slackConfigs: [{ apiURL: { name: "receivers", key: "slack", optional: false } }] },
          ],
          tlsConfig: { ca: { configMap: { name: "ca-bundle", key: "ca.crt" } } },
        },
      },
    ]);
    expect(found).toEqual([{ namespace: "ns", name: "receivers", keys: ["pd", "slack"], mounted: false }]);
  });

  test("a Secret the objects create themselves is not listed", () => {
    const created: ObjectLike = { apiVersion: "v1", kind: "Secret", metadata: { name: "creds", namespace: "ns" } };
    const user = pod({ containers: [{ env: [{ name: "A", valueFrom: { secretKeyRef: { name: "creds", key: "password" } } }] }] });
    expect(referencedSecrets([user, created])).toEqual([]);
    expect(referencedSecrets([user])).toHaveLength(1);
  });

  test("the local stack references exactly the Secrets the README lists as prerequisites", async () => {
    const { k8sObjects } = await renderStack("local");
    expect(referencedSecrets(k8sObjects).map((s) => s.name)).toEqual([
      "alertmanager-receivers", "pgbackrest-cipher", "pgbackrest-client-tls", "postgres-credentials", "postgres-tls",
    ]);
  });
});
