/**
 * A small HTTP(S) client for tests that must trust a test CA: Node's fetch takes no CA, and
 * NODE_EXTRA_CA_CERTS is read only when a process starts.
 */
import { request as httpRequest, type OutgoingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";

export interface ClientResponse {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
}

export interface ClientRequest {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders | readonly string[];
  readonly body?: string;
  /** PEM of the CA that signs the server's certificate (https only). */
  readonly ca?: string;
}

export function requestText(url: string, init: ClientRequest = {}): Promise<ClientResponse> {
  const target = new URL(url);
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(target, { method: init.method ?? "GET", headers: init.headers as OutgoingHttpHeaders, ca: init.ca }, (response) => {
      let text = "";
      response.setEncoding("utf8").on("data", (chunk: string) => (text += chunk));
      response.on("end", () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(response.headers)) {
          if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
        }
        resolve({ status: response.statusCode ?? 0, text, headers });
      });
      response.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}
