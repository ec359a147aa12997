/** Bad flags or environment: the scripts exit 2 with the message (naming the flag or variable). */
export class UsageError extends Error {}
