-- A message can end refused: its recipient refused it for good (it reverted with
-- `Refused(code)` on an EVM Inbox), or the destination has no recipient contract.
-- The destination consumed it and records a `refused` receipt (docs/protocol.md,
-- "Receipts"); it will never be delivered. The evidence names the transaction and
-- the refusal code.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected', 'refused'));
COMMENT ON COLUMN messages.status IS 'PERSISTED enum: observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected | refused. Changes only along message_status_transitions, by compare-and-set.';

ALTER TABLE lifecycle_log DROP CONSTRAINT lifecycle_log_event_check;
ALTER TABLE lifecycle_log ADD CONSTRAINT lifecycle_log_event_check CHECK (event IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected', 'refused',
    'checkpoint', 'attestation', 'operator', 'consensus_fault'));
COMMENT ON COLUMN lifecycle_log.event IS 'PERSISTED enum: the message status entered (observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected | refused) or a non-message event (checkpoint | attestation | operator | consensus_fault).';

-- The destination is the truth: another submission (another member's, or anyone's)
-- may have ended the message refused, or expired (an EVM Inbox consumes a message
-- submitted after its deadline), whatever this relayer had recorded so far.
INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('submitted',   'refused', 'the recipient refused it for good in the delivery transaction; the destination consumed it with a refused receipt'),
    ('observed',    'refused', 'the destination shows it refused for good (another submission)'),
    ('verified',    'refused', 'the destination shows it refused for good (another submission)'),
    ('attested',    'refused', 'the destination shows it refused for good (another submission)'),
    ('failed',      'refused', 'the destination shows it refused for good (another submission)'),
    ('dead_letter', 'refused', 'the destination shows it refused for good (another submission)'),
    ('dead_letter', 'expired', 'the destination shows it consumed as expired (another submission)');

-- The per-route counts gain `refused`, as the last column (a view keeps its columns'
-- order; readers that name columns are unaffected). The auditor role's SELECT on the
-- view stands.
CREATE OR REPLACE VIEW route_stats_v AS
SELECT m.origin,
       m.destination,
       count(*)                                                  AS total,
       count(*) FILTER (WHERE m.status = 'observed')             AS observed,
       count(*) FILTER (WHERE m.status = 'verified')             AS verified,
       count(*) FILTER (WHERE m.status = 'attested')             AS attested,
       count(*) FILTER (WHERE m.status = 'submitted')            AS submitted,
       count(*) FILTER (WHERE m.status = 'delivered')            AS delivered,
       count(*) FILTER (WHERE m.status = 'failed')               AS failed,
       count(*) FILTER (WHERE m.status = 'dead_letter')          AS dead_letter,
       count(*) FILTER (WHERE m.status = 'expired')              AS expired,
       count(*) FILTER (WHERE m.status = 'rejected')             AS rejected,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM (d.delivered_at - m.observed_at)))
           FILTER (WHERE d.message_id IS NOT NULL)               AS latency_p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (
           ORDER BY extract(epoch FROM (d.delivered_at - m.observed_at)))
           FILTER (WHERE d.message_id IS NOT NULL)               AS latency_p95_seconds,
       count(*) FILTER (WHERE m.status = 'refused')              AS refused
FROM messages m
LEFT JOIN deliveries d ON d.message_id = m.id
GROUP BY m.origin, m.destination;
