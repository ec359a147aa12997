/** Typed domain errors; the API maps them to HTTP statuses (404, 409, 400). */
export class DomainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An id that does not exist (HTTP 404). */
export class NotFoundError extends DomainError {
  constructor(
    readonly entity: "observation" | "pattern" | "proposal" | "snapshot" | "validation_report" | "mape_k_cycle" | "receipt" | "checkpoint" | "tile",
    readonly id: string,
    /** Default: "<entity> <id> not found". */
    message?: string,
  ) {
    super(message ?? `${entity} ${id} not found`);
  }
}

/** The request is valid but conflicts with the current state (HTTP 409). */
export class ConflictError extends DomainError {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** Bad input: names the offending field and the reason (HTTP 400). */
export class ValidationError extends DomainError {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}
