/**
 * A loopback OIDC issuer for benchmarks: one Okta-style issuer (RS256, `groups` claim) whose JWKS
 * the service fetches from http://127.0.0.1:PORT/oauth2/default/v1/keys, and role tokens minted
 * with jose. Okta's layout lets the service derive the JWKS URI from the issuer alone.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { ROLE_GROUPS, type Role } from "../../app/src/auth/roles";

const ISSUER_PATH = "/oauth2/default";
const JWKS_PATH = `${ISSUER_PATH}/v1/keys`;
const KID = "bench-key-1";

export interface BenchOidc {
  readonly issuer: string;
  /** Environment that points the service at this issuer. */
  env(): Record<string, string>;
  /** A bearer token whose groups grant exactly `role`, valid for `ttlSeconds`. */
  roleToken(role: Role, ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startBenchOidc(): Promise<BenchOidc> {
  const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: KID, alg: "RS256", use: "sig" }] });
  const server: Server = createServer((request, response) => {
    if (request.url !== JWKS_PATH) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "application/json" }).end(jwks);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}${ISSUER_PATH}`;
  return {
    issuer,
    env: () => ({ KNHK_OIDC_OKTA_ISSUER: issuer }),
    async roleToken(role, ttlSeconds = 3600) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ sub: `bench-${role}`, groups: [ROLE_GROUPS[role][0]], amr: ["pwd", "mfa"] })
        .setProtectedHeader({ alg: "RS256", kid: KID, typ: "JWT" })
        .setIssuer(issuer)
        .setAudience("knhk-api")
        .setIssuedAt(now)
        .setExpirationTime(now + ttlSeconds)
        .sign(privateKey);
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
