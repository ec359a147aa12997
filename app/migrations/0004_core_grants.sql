-- Privileges of the service role (created by 0002) on the warm path tables: what the service
-- writes, nothing more. Observations, patterns and cycles are insert-only for it.
GRANT SELECT, INSERT ON observations, patterns, mape_k_cycles TO knhk_service;
GRANT SELECT, INSERT, UPDATE ON knowledge_snapshots, knowledge_current, proposals TO knhk_service;
GRANT SELECT, INSERT ON snapshot_transitions, validation_reports TO knhk_service;
GRANT UPDATE (receipt_seq) ON snapshot_transitions, validation_reports TO knhk_service;
GRANT USAGE ON SEQUENCE
  observations_seq_seq, patterns_seq_seq, mape_k_cycles_seq_seq, knowledge_snapshots_seq_seq,
  proposals_seq_seq, snapshot_transitions_seq_seq, validation_reports_seq_seq
  TO knhk_service;
