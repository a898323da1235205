-- Holds (docs/protocol.md, "Holds"). A destination app may hold a message instead of
-- executing it (a payment over a value limit, or a large one): the destination keeps
-- it, deliverable but not executed, until a quorum of the origin's signers releases
-- or rejects it, or its hold expires. A relayer that sees its submission held records
-- the message `held` (evidence: the transaction and the app's reason) and submits it
-- again at `next_attempt_at`: the destination then executes it (released), ends it
-- refused (rejected, or the hold expired), or keeps it held.
ALTER TABLE messages DROP CONSTRAINT messages_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_status_check CHECK (status IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected', 'refused', 'held'));
COMMENT ON COLUMN messages.status IS 'PERSISTED enum: observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected | refused | held. Changes only along message_status_transitions, by compare-and-set.';

-- `hold_decision`: this member signed the release or rejection of a held message, or
-- a quorum's decision was submitted (evidence: digest, signer, signature, reason,
-- transaction). No status change.
ALTER TABLE lifecycle_log DROP CONSTRAINT lifecycle_log_event_check;
ALTER TABLE lifecycle_log ADD CONSTRAINT lifecycle_log_event_check CHECK (event IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected', 'refused', 'held',
    'checkpoint', 'attestation', 'operator', 'consensus_fault', 'receipt',
    'hold_decision'));
COMMENT ON COLUMN lifecycle_log.event IS 'PERSISTED enum: the message status entered (observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected | refused | held), a receipt of the message observed (receipt), a decision on a held message (hold_decision), or a non-message event (checkpoint | attestation | operator | consensus_fault).';

INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('submitted', 'held',        'the destination app held it (a value limit): not executed, still deliverable'),
    ('held',      'attested',    'due again: submitted to see whether a quorum decided its hold'),
    ('held',      'delivered',   'the destination shows it delivered (released, another submission)'),
    ('held',      'refused',     'the destination shows it refused (its hold rejected or expired, another submission)'),
    ('held',      'expired',     'the destination shows it expired (its deadline passed while held)'),
    ('held',      'dead_letter', 'an operator stopped resubmitting it');

-- Claims read held messages when they are due, like failed ones: the partial index of
-- due messages grows by `held` (the predicate must list every status a claim asks for).
DROP INDEX messages_due_idx;
CREATE INDEX messages_due_idx ON messages (destination, next_attempt_at)
    WHERE status IN ('observed', 'verified', 'attested', 'submitted', 'failed', 'held');

-- A member's decisions on held messages: its signature over the destination's
-- release or reject digest, with why. Each is also a `hold_decision` row of the
-- hash-chained log; this table is what the members' endpoint hands to the others.
CREATE TABLE hold_decisions (
    message_id   bytea NOT NULL REFERENCES messages (id),
    decision     text NOT NULL CHECK (decision IN ('release', 'reject')),
    signer       bytea NOT NULL CHECK (octet_length(signer) = 20),
    member       text NOT NULL,
    digest       bytea NOT NULL CHECK (octet_length(digest) = 32),
    signature    bytea NOT NULL CHECK (octet_length(signature) = 65),
    reason       text NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, signer, decision)
);
COMMENT ON TABLE hold_decisions IS 'Signed decisions on held messages: this member''s (isthmus approve / reject) and those the other members handed over. Never changed; the log holds each as a hold_decision row.';
COMMENT ON COLUMN hold_decisions.decision IS 'PERSISTED enum: release | reject.';
COMMENT ON COLUMN hold_decisions.digest IS 'The destination''s hold decision digest the signature is over (docs/protocol.md, "Holds").';

CREATE TRIGGER hold_decisions_no_update_delete
    BEFORE UPDATE OR DELETE ON hold_decisions
    FOR EACH ROW EXECUTE FUNCTION receipts_refuse_change();

-- A uint256 (32 bytes, big-endian) as a number, for the payment amounts of the views.
CREATE FUNCTION uint256_numeric(b bytea) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    n numeric := 0;
BEGIN
    FOR i IN 0 .. octet_length(b) - 1 LOOP
        n := n * 256 + get_byte(b, i);
    END LOOP;
    RETURN n;
END;
$$;

-- Held messages and their timeline, for auditors: when each was first held and why,
-- the decisions signed so far, and where it stands now. The amount and the banks are
-- read from a payment's body (160 bytes: uetr, debtor, creditor, amount, currency).
CREATE VIEW holds_v AS
WITH held AS (
    SELECT l.message_id,
           min(l.created_at)                                 AS first_held_at,
           max(l.created_at)                                 AS last_held_at,
           count(*)                                          AS times_held,
           (array_agg(l.evidence ->> 'reason' ORDER BY l.seq DESC))[1] AS reason
    FROM lifecycle_log l
    WHERE l.event = 'held'
    GROUP BY l.message_id
)
SELECT m.id                                                  AS message_id,
       encode(m.id, 'hex')                                   AS id_hex,
       m.origin,
       m.destination,
       m.status,
       h.reason,
       h.first_held_at,
       h.last_held_at,
       h.times_held,
       CASE WHEN octet_length(m.body) = 160
            THEN uint256_numeric(substring(m.body FROM 97 FOR 32)) END AS amount,
       CASE WHEN octet_length(m.body) = 160
            THEN encode(substring(m.body FROM 33 FOR 32), 'hex') END    AS debtor_hex,
       CASE WHEN octet_length(m.body) = 160
            THEN encode(substring(m.body FROM 65 FOR 32), 'hex') END    AS creditor_hex,
       (SELECT count(*) FROM hold_decisions d
         WHERE d.message_id = m.id AND d.decision = 'release')  AS releases_signed,
       (SELECT count(*) FROM hold_decisions d
         WHERE d.message_id = m.id AND d.decision = 'reject')   AS rejections_signed,
       extract(epoch FROM (coalesce(dl.delivered_at, now()) - h.first_held_at)) AS seconds_in_hold
FROM held h
JOIN messages m ON m.id = h.message_id
LEFT JOIN deliveries dl ON dl.message_id = m.id;

-- Decisions by member, for auditors.
CREATE VIEW hold_decisions_v AS
SELECT d.member,
       encode(d.signer, 'hex')        AS signer_hex,
       encode(d.message_id, 'hex')    AS id_hex,
       m.origin,
       m.destination,
       d.decision,
       d.reason,
       d.decided_at,
       m.status                       AS message_status
FROM hold_decisions d
JOIN messages m ON m.id = d.message_id;

GRANT SELECT ON hold_decisions, holds_v, hold_decisions_v TO isthmus_auditor;
