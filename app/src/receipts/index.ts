/**
 * Receipt ledger: signed, hash-chained receipts (DESIGN.md "Receipts").
 *
 *   const signer = await loadSigner({ db, env: process.env });   // Vault transit, KNHK_SIGNING_KEY_FILE + _VERSION, or ephemeral
 *   const ledger = createLedger({ db, signer, metrics: { onBatch, onAppended } });
 *   const receipt = await ledger.append({ operation: "mape_k.monitor", outcome: "success", evidence: {...}, sector: "default" });
 *   await ledger.close();                                          // flushes queued appends
 *
 *   const report = await verifyChain({ db, fromCheckpoint: true }); // incremental
 *   for await (const r of exportReceipts(db, { afterSeq: 0 })) ... // NDJSON export for the archive
 *
 * Bad input to append rejects with ReceiptInputError (its `field` names the field).
 */
export type {
  ChainFailure,
  ChainFailureKind,
  JsonValue,
  LedgerMetrics,
  Receipt,
  ReceiptInput,
  VerificationMetrics,
  VerificationProgress,
  VerificationReport,
} from "./types";
export {
  GENESIS_PARENT_HASH,
  ReceiptInputError,
  canonicalReceiptText,
  receiptIdFromHash,
  sha256Hex,
  validateReceiptInput,
} from "./canonical";
export {
  SIGNING_KEY_ENV,
  generateSigningKey,
  listSigningKeys,
  loadKeyring,
  loadSigner,
  mayRegisterKeys,
  registerEphemeralSigner,
  registerSigningKey,
  signerFromPem,
  SigningKeyRegistrationError,
  SigningUnavailableError,
  type Keyring,
  type LocalSigner,
  type Signer,
  type SigningKeyRecord,
} from "./keys";
export {
  TRANSIT_ENV,
  chooseSigningVersion,
  createTransitSigner,
  readTransitKeys,
  TransitClient,
  TransitConfigError,
  transitSettingsFromEnv,
  type TransitKeyInfo,
  type TransitKeyStatus,
  type TransitSettings,
  type TransitSigner,
} from "./vault-transit";
export { LedgerClosedError, createLedger, type Ledger, type LedgerOptions } from "./ledger";
export { type ReceiptLink, type ReceiptLinkTable, type StagedReceipt, type StagingStatement } from "./outbox";
export { checkChainHead, checkCheckpoints, untrustedKeys } from "./anchors";
export {
  chainHead,
  exportReceipts,
  getReceipt,
  getReceiptBySeq,
  isReceiptId,
  listReceipts,
  type ChainHead,
  type ExportOptions,
  type ListOptions,
} from "./store";
export { latestCheckpoint, verifyChain, type Checkpoint, type VerifyOptions } from "./verify";
