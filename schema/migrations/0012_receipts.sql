-- Receipts (docs/protocol.md, "Receipts"). A destination ends each message once
-- (delivered, refused or expired) and sends the receipts of a submission back to
-- the origin as one ordinary message, a receipt batch, from its Inbox to the
-- origin's. A relayer that observes a receipt batch on the destination's outbox
-- records each receipt it carries, in the same transaction as the batch's own
-- message row and the cursor: one `receipts` row, and one `receipt` row in the
-- hash-chained log (no status change). The receipt batch is then relayed like any
-- message; its own history (`carried_by`) shows the origin taking it.
CREATE TABLE receipts (
    message_id   bytea PRIMARY KEY CHECK (octet_length(message_id) = 32),
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'refused', 'expired')),
    result       bytea NOT NULL CHECK (octet_length(result) = 32),
    carried_by   bytea NOT NULL REFERENCES messages (id),
    observed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipts_carried_by_idx ON receipts (carried_by);
COMMENT ON TABLE receipts IS 'How each message ended on its destination, as the receipt batch carrying it back (carried_by, a message from the destination''s Inbox to the origin''s) says. One row per message; written with the batch''s observation; never changed.';
COMMENT ON COLUMN receipts.message_id IS 'The message the receipt ends (usually also in messages; a receipt observed before its message is kept all the same).';
COMMENT ON COLUMN receipts.outcome IS 'PERSISTED enum: delivered | refused | expired.';
COMMENT ON COLUMN receipts.result IS 'The recipient''s answer (delivered) or refusal code (refused); zero otherwise.';

CREATE FUNCTION receipts_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'receipts are never changed: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER receipts_no_update_delete
    BEFORE UPDATE OR DELETE ON receipts
    FOR EACH ROW EXECUTE FUNCTION receipts_refuse_change();

ALTER TABLE lifecycle_log DROP CONSTRAINT lifecycle_log_event_check;
ALTER TABLE lifecycle_log ADD CONSTRAINT lifecycle_log_event_check CHECK (event IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected', 'refused',
    'checkpoint', 'attestation', 'operator', 'consensus_fault', 'receipt'));
COMMENT ON COLUMN lifecycle_log.event IS 'PERSISTED enum: the message status entered (observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected | refused), a receipt of the message observed (receipt), or a non-message event (checkpoint | attestation | operator | consensus_fault).';

-- Both legs of each message with a receipt: the message's own status and delivery,
-- the receipt, and the receipt batch's delivery to the origin (the round trip).
CREATE VIEW receipts_v AS
SELECT r.message_id,
       encode(r.message_id, 'hex')                      AS id_hex,
       m.origin,
       m.destination,
       m.status                                         AS message_status,
       d.tx_hash                                        AS delivery_tx,
       r.outcome,
       r.result,
       r.carried_by,
       b.status                                         AS receipt_status,
       bd.tx_hash                                       AS receipt_tx,
       bd.delivered_at                                  AS receipt_taken_at,
       extract(epoch FROM (bd.delivered_at - m.observed_at)) AS round_trip_seconds
FROM receipts r
JOIN messages b ON b.id = r.carried_by
LEFT JOIN messages m ON m.id = r.message_id
LEFT JOIN deliveries d ON d.message_id = r.message_id
LEFT JOIN deliveries bd ON bd.message_id = r.carried_by;
COMMENT ON VIEW receipts_v IS 'Per message with a receipt: its status and delivery, the receipt, and the receipt batch''s status and delivery to the origin (receipt_status delivered: the origin took it); round_trip_seconds from the message''s observation to the receipt''s delivery.';

GRANT SELECT ON receipts, receipts_v TO isthmus_auditor;
