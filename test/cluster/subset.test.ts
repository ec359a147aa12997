/** The live-object comparison of the cluster suite must fail on every kind of disagreement. */
import { subsetMismatches } from "./subset";

describe("subsetMismatches", () => {
  test("extra fields and defaults on the live side are fine; equal quantities in other spellings too", () => {
    const declared = { spec: { replicas: 2, resources: { cpu: "1000m", memory: "1024Mi" }, ports: [{ port: 80 }] } };
    const live = { spec: { replicas: 2, resources: { cpu: "1", memory: "1Gi" }, ports: [{ port: 80, protocol: "TCP" }], extra: true }, status: {} };
    expect(subsetMismatches(declared, live)).toEqual([]);
  });

  test("a changed value, a missing field, a different array length and a different quantity are each named", () => {
    const declared = { spec: { replicas: 2, image: "a:1", ports: [{ port: 80 }], memory: "1Gi", name: "x" } };
    const live = { spec: { replicas: 3, ports: [{ port: 80 }, { port: 81 }], memory: "1G", name: "1" } };
    expect(subsetMismatches(declared, live)).toEqual([
      "spec.replicas: expected 2, found 3",
      "spec.image: expected \"a:1\", found undefined",
      "spec.ports: expected 1 items, found 2",
      "spec.memory: expected \"1Gi\", found \"1G\"",
      "spec.name: expected \"x\", found \"1\"",
    ]);
  });
});
