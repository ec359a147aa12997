/**
 * The KNHK CrossGuard policy pack. Run by the engine: `pulumi preview --policy-pack policy`.
 * Offline (no engine): `npm run policy -- --stack <stack>` applies the same policies to the
 * mock render. Never import this file in tests: constructing the PolicyPack starts the analyzer.
 */
import { PolicyPack } from "@pulumi/policy";
import { ALL_POLICIES } from "./policies/all";

new PolicyPack("knhk", {
  description: "KNHK platform guarantees: hardened containers, pinned images, HA in production, RPO 0, default-deny networking, immutable compliance archive, least-privilege Vault.",
  policies: [...ALL_POLICIES],
});
