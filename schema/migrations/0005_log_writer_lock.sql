-- The log's writers were serialized by an advisory lock (key 7350213370001). Any
-- role can take any advisory lock, the read-only auditor role included: an auditor
-- holding that key stopped every history write of the relayer for as long as it
-- held it. Writers now serialize on a row lock of this one-row table instead. A row
-- lock needs UPDATE privilege on the table (`SELECT ... FOR UPDATE`, `LOCK TABLE`
-- in any mode that conflicts with writers), and the auditor role has no privilege
-- on it at all, so no auditor can take, hold or wait on the writers' lock.
CREATE TABLE lifecycle_log_writer (
    id integer PRIMARY KEY CHECK (id = 1)
);
INSERT INTO lifecycle_log_writer (id) VALUES (1);
COMMENT ON TABLE lifecycle_log_writer IS 'One row whose row lock serializes lifecycle_log writers (taken by the chain trigger until the writing transaction ends). Not readable by auditors.';

CREATE OR REPLACE FUNCTION lifecycle_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
BEGIN
    -- One writer at a time: the row lock is held until the transaction ends, so the
    -- head read below is the head the next writer will chain onto (no fork).
    PERFORM 1 FROM lifecycle_log_writer WHERE id = 1 FOR UPDATE;
    SELECT seq, row_hash INTO head_seq, head_hash
        FROM lifecycle_log ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := decode(repeat('00', 32), 'hex');
    END IF;
    NEW.seq := head_seq + 1;
    NEW.prev_hash := head_hash;
    NEW.created_at := clock_timestamp();
    NEW.row_hash := sha256(lifecycle_log_row_bytes(
        NEW.seq, NEW.prev_hash, NEW.message_id, NEW.event, NEW.actor,
        NEW.created_at, NEW.evidence));
    RETURN NEW;
END;
$$;

COMMENT ON TABLE lifecycle_log IS 'Append-only history of every step, hash-chained: row_hash = sha256(canonical row bytes including prev_hash). seq, prev_hash, row_hash and created_at are assigned by a trigger under the row lock of lifecycle_log_writer; UPDATE, DELETE and TRUNCATE are refused.';
