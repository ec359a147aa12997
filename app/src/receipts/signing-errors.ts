/** Why a signer could not be set up or could not sign. */

/** A signing key is not registered and this identity may not register it (the message names the fix). */
export class SigningKeyRegistrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SigningKeyRegistrationError";
  }
}

/**
 * The signer's backend (Vault transit) could not produce valid signatures: unreachable, too slow,
 * sealed, refusing, or answering wrongly. No receipt of the batch is stored; the batch fails as a
 * whole (no item caused it, so it is not split and retried per item) and the API answers 503.
 */
export class SigningUnavailableError extends Error {
  readonly statusCode = 503;
  readonly code = "KNHK_SIGNING_UNAVAILABLE";
  constructor(message: string) {
    super(`receipt signing unavailable: ${message}`);
    this.name = "SigningUnavailableError";
  }
}
