/**
 * A local OIDC stand-in for tests: one loopback HTTP server publishing the JWKS of three issuers
 * laid out like the real providers (so the service derives each JWKS URI from the issuer alone),
 * and token minting with jose.
 *   okta     http://127.0.0.1:P/oauth2/default   RS256   groups
 *   azure    http://127.0.0.1:P/tenant-1/v2.0    ES256   roles + oid
 *   keycloak http://127.0.0.1:P/realms/knhk      EdDSA   realm_access.roles / groups
 */
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { ROLE_GROUPS, type Role } from "../../../app/src/auth/roles";

export type Provider = "okta" | "azure" | "keycloak";

interface IssuerKeys {
  readonly alg: "RS256" | "ES256" | "EdDSA";
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
  readonly path: string;
  readonly jwksPath: string;
}

export interface TokenOptions {
  readonly claims?: JWTPayload & Record<string, unknown>;
  readonly audience?: string;
  readonly issuer?: string;
  /** Seconds relative to now. */
  readonly expiresIn?: number;
  readonly issuedAgo?: number;
  readonly notBeforeIn?: number;
  readonly omitExp?: boolean;
  readonly kid?: string;
  /** Sign with a key the JWKS does not publish. */
  readonly foreignKey?: boolean;
  /** Carry the provider's usual proof of MFA (MFA_CLAIMS); default true. `claims` may override it. */
  readonly mfa?: boolean;
}

/** What each provider's token says after a second factor (what DEFAULT_MFA_RULES accepts). */
export const MFA_CLAIMS: Record<Provider, Record<string, unknown>> = {
  okta: { amr: ["pwd", "mfa"] },
  azure: { amr: ["pwd", "mfa"] },
  keycloak: { acr: "2" },
};

export interface TestOidc {
  readonly baseUrl: string;
  issuer(provider: Provider): string;
  /** Per-provider environment: KNHK_OIDC_<PROVIDER>_ISSUER for all three. */
  env(): Record<string, string>;
  token(provider: Provider, options?: TokenOptions): Promise<string>;
  /** A token whose groups grant exactly `role` (Okta's by default), with the provider's MFA claims unless `mfa` is false. */
  roleToken(role: Role, subject?: string, provider?: Provider, mfa?: boolean): Promise<string>;
  /**
   * A token whose payload is exactly `payloadJson` (text JSON.stringify cannot produce, e.g.
   * `"exp":1e309`), signed by the provider's published key; `header` is merged into the protected header.
   */
  signRaw(provider: Provider, payloadJson: string, header?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

const LAYOUT: Record<Provider, { alg: IssuerKeys["alg"]; path: string; jwksPath: string }> = {
  okta: { alg: "RS256", path: "/oauth2/default", jwksPath: "/oauth2/default/v1/keys" },
  azure: { alg: "ES256", path: "/tenant-1/v2.0", jwksPath: "/tenant-1/discovery/v2.0/keys" },
  keycloak: { alg: "EdDSA", path: "/realms/knhk", jwksPath: "/realms/knhk/protocol/openid-connect/certs" },
};

/** JWS algorithms as WebCrypto signing parameters (ECDSA output is already JWS's r || s form). */
const WEBCRYPTO_SIGNING = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  ES256: { name: "ECDSA", hash: "SHA-256" },
  EdDSA: { name: "Ed25519" },
} as const;

async function keysFor(provider: Provider): Promise<IssuerKeys> {
  const { alg, path, jwksPath } = LAYOUT[provider];
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${provider}-key-1`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, jwk, path, jwksPath };
}

/** `tls`: serve the JWKS over https with this certificate (issuers become https://...). */
export async function startOidc(options: { tls?: { cert: string; key: string } } = {}): Promise<TestOidc> {
  const keys = {
    okta: await keysFor("okta"),
    azure: await keysFor("azure"),
    keycloak: await keysFor("keycloak"),
  };
  const foreign = {
    okta: await keysFor("okta"),
    azure: await keysFor("azure"),
    keycloak: await keysFor("keycloak"),
  };
  const handler = (request: import("node:http").IncomingMessage, response: import("node:http").ServerResponse) => {
    const entry = Object.values(keys).find((k) => k.jwksPath === request.url);
    if (!entry) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [entry.jwk] }));
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const baseUrl = `${options.tls ? "https" : "http"}://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  const issuer = (provider: Provider) => `${baseUrl}${LAYOUT[provider].path}`;

  const oidc: TestOidc = {
    baseUrl,
    issuer,
    env: () => ({
      KNHK_OIDC_OKTA_ISSUER: issuer("okta"),
      KNHK_OIDC_AZURE_ISSUER: issuer("azure"),
      KNHK_OIDC_KEYCLOAK_ISSUER: issuer("keycloak"),
    }),
    async token(provider, options = {}) {
      const key = options.foreignKey ? foreign[provider] : keys[provider];
      const now = Math.floor(Date.now() / 1000);
      const jwt = new SignJWT({ sub: "user-1", ...(options.mfa === false ? {} : MFA_CLAIMS[provider]), ...options.claims })
        .setProtectedHeader({ alg: key.alg, kid: options.kid ?? (options.foreignKey ? "unknown-key" : key.kid), typ: "JWT" })
        .setIssuer(options.issuer ?? issuer(provider))
        .setAudience(options.audience ?? "knhk-api")
        .setIssuedAt(now - (options.issuedAgo ?? 0));
      if (!options.omitExp) jwt.setExpirationTime(now + (options.expiresIn ?? 600));
      if (options.notBeforeIn !== undefined) jwt.setNotBefore(now + options.notBeforeIn);
      return jwt.sign(key.privateKey);
    },
    roleToken(role, subject = `${role}-user`, provider = "okta", mfa = true) {
      return oidc.token(provider, { mfa, claims: { sub: subject, groups: [ROLE_GROUPS[role][0]] } });
    },
    async signRaw(provider, payloadJson, header = {}) {
      // Signed with WebCrypto, not jose: jose refuses to sign headers a verifier must reject (e.g. unknown `crit`).
      const key = keys[provider];
      const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");
      const input = `${b64(JSON.stringify({ alg: key.alg, kid: key.kid, typ: "JWT", ...header }))}.${b64(payloadJson)}`;
      const signature = await crypto.subtle.sign(WEBCRYPTO_SIGNING[key.alg], key.privateKey, new TextEncoder().encode(input));
      return `${input}.${Buffer.from(signature).toString("base64url")}`;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return oidc;
}
