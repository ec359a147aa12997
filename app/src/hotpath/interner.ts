/**
 * Strings -> dense 32-bit ids. Interning a new string allocates (Map entry); looking up a known
 * one does not, so the steady state of a hot loop is allocation-free.
 */
export const NO_ID = -1;

export class Interner {
  private readonly ids = new Map<string, number>();
  private readonly terms: string[] = [];

  /**
   * @param limit  how many distinct strings fit; when full, intern() returns NO_ID for new strings
   * @param firstId id of the first interned string (predicates start at 0 = run 0; terms at 1 so
   *                that 0 can mean "no term")
   */
  constructor(
    readonly limit: number,
    readonly firstId: number = 1,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    if (!Number.isInteger(firstId) || firstId < 0 || firstId + limit - 1 > 0x7fffffff) {
      throw new RangeError(`firstId must be a non-negative integer with firstId + limit - 1 <= 2^31 - 1, got ${firstId}`);
    }
  }

  get size(): number {
    return this.terms.length;
  }

  /** The id of `term`, assigning the next id on first sight; NO_ID when the interner is full. */
  intern(term: string): number {
    const known = this.ids.get(term);
    if (known !== undefined) return known;
    if (typeof term !== "string") throw new TypeError(`term must be a string, got ${typeof term}`);
    if (this.terms.length >= this.limit) return NO_ID;
    const id = this.firstId + this.terms.length;
    this.ids.set(term, id);
    this.terms.push(term);
    return id;
  }

  /** The id of a known term, NO_ID otherwise (never assigns). */
  lookup(term: string): number {
    return this.ids.get(term) ?? NO_ID;
  }

  /** The string behind an id, undefined for an id never assigned. */
  term(id: number): string | undefined {
    return this.terms[id - this.firstId];
  }
}
