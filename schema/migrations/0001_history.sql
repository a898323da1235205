-- Isthmus relayer history, version 1.
--
-- Applied migrations are never edited (sqlx checks their hashes): later changes go
-- into new numbered files. Every text column constrained by a CHECK holds a
-- PERSISTED enum: values are only ever added, never renamed or removed, because
-- rows written by older relayers must stay readable. The Rust enums that write
-- these values carry the same warning.
--
-- Unsigned protocol integers: u32 values (ledger ids, counts) are stored as bigint
-- with a range CHECK; u64 values that come from untrusted source data (message nonce
-- and deadline) are stored as numeric(20,0) so that the whole u64 range fits; block
-- numbers are bigint (>= 0).

-- ---------------------------------------------------------------------------
-- Ledgers
-- ---------------------------------------------------------------------------
CREATE TABLE ledgers (
    id          bigint PRIMARY KEY CHECK (id BETWEEN 0 AND 4294967295),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL CHECK (kind IN ('evm', 'substrate')),
    finality    text NOT NULL
                CHECK (finality IN ('qbft', 'ibft2', 'clique', 'finalized-tag', 'grandpa')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ledgers IS 'Ledgers known to this relayer, keyed by the protocol ledger id (u32 domain assigned in config).';
COMMENT ON COLUMN ledgers.kind IS 'PERSISTED enum: evm | substrate.';
COMMENT ON COLUMN ledgers.finality IS 'PERSISTED enum: how finality is established: qbft | ibft2 | clique (consortium seals), finalized-tag (trusts the node''s finalized tag), grandpa (verified justifications).';

-- ---------------------------------------------------------------------------
-- Progress cursors
-- ---------------------------------------------------------------------------
CREATE TABLE progress_cursors (
    ledger_id       bigint NOT NULL REFERENCES ledgers (id),
    destination_id  bigint CHECK (destination_id BETWEEN 0 AND 4294967295),
    stage           text NOT NULL
                    CHECK (stage IN ('observe', 'verify', 'attest', 'deliver', 'confirm')),
    block_number    bigint NOT NULL CHECK (block_number >= 0),
    block_hash      bytea NOT NULL CHECK (octet_length(block_hash) = 32),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT progress_cursors_key UNIQUE NULLS NOT DISTINCT (ledger_id, destination_id, stage)
);
COMMENT ON TABLE progress_cursors IS 'Last block of ledger_id fully processed by a pipeline stage; destination_id is NULL for a ledger-wide cursor. Moves forward only, in the same transaction as the stage output.';
COMMENT ON COLUMN progress_cursors.stage IS 'PERSISTED enum: observe | verify | attest | deliver | confirm.';

-- ---------------------------------------------------------------------------
-- Messages
-- ---------------------------------------------------------------------------
CREATE TABLE messages (
    id                   bytea PRIMARY KEY CHECK (octet_length(id) = 32),
    version              smallint NOT NULL CHECK (version BETWEEN 0 AND 255),
    nonce                numeric(20, 0) NOT NULL CHECK (nonce BETWEEN 0 AND 18446744073709551615),
    origin               bigint NOT NULL CHECK (origin BETWEEN 0 AND 4294967295),
    sender               bytea NOT NULL CHECK (octet_length(sender) = 32),
    destination          bigint NOT NULL CHECK (destination BETWEEN 0 AND 4294967295),
    recipient            bytea NOT NULL CHECK (octet_length(recipient) = 32),
    deadline             numeric(20, 0) NOT NULL CHECK (deadline BETWEEN 0 AND 18446744073709551615),
    body                 bytea NOT NULL,
    canonical            bytea NOT NULL CHECK (octet_length(canonical) > 0),
    status               text NOT NULL CHECK (status IN (
                             'observed', 'verified', 'attested', 'submitted', 'delivered',
                             'failed', 'dead_letter', 'expired', 'rejected')),
    source_block_number  bigint NOT NULL CHECK (source_block_number >= 0),
    source_block_hash    bytea NOT NULL CHECK (octet_length(source_block_hash) = 32),
    source_tx_hash       bytea CHECK (octet_length(source_tx_hash) = 32),
    observed_at          timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error           text,
    next_attempt_at      timestamptz,
    claimed_by           text,
    claimed_until        timestamptz,
    CHECK ((claimed_by IS NULL) = (claimed_until IS NULL))
);
CREATE INDEX messages_route_status_idx ON messages (origin, destination, status, observed_at);
CREATE INDEX messages_ready_idx ON messages (destination, status, origin, nonce)
    WHERE status IN ('verified', 'attested', 'submitted', 'failed');
CREATE INDEX messages_observed_at_idx ON messages (observed_at);
COMMENT ON TABLE messages IS 'One row per protocol message seen on a source ledger; id = keccak256(canonical). Fields other than the status/retry/claim columns never change.';
COMMENT ON COLUMN messages.status IS 'PERSISTED enum: observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected. Changes only along message_status_transitions, by compare-and-set.';
COMMENT ON COLUMN messages.canonical IS 'Canonical protocol encoding (packed big-endian); keccak256 of it is the id.';
COMMENT ON COLUMN messages.claimed_by IS 'Worker holding a delivery lease on the row until claimed_until; cleared by every status change.';

-- Legal status changes, readable by auditors; enforced by a trigger as well as by
-- the relayer's own table (the two are compared by the test suite).
CREATE TABLE message_status_transitions (
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    meaning      text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
COMMENT ON TABLE message_status_transitions IS 'The legal message status changes; any other UPDATE of messages.status is refused by a trigger.';
INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('observed',    'verified',    'source inclusion and finality verified by a light client'),
    ('observed',    'expired',     'deadline passed before verification'),
    ('observed',    'rejected',    'malformed or not provable on the source ledger'),
    ('verified',    'attested',    'enough consortium attestations collected for its checkpoint'),
    ('verified',    'expired',     'deadline passed before attestation'),
    ('attested',    'submitted',   'delivery transaction sent to the destination'),
    ('attested',    'delivered',   'destination already processed it (replay protection says so)'),
    ('attested',    'failed',      'submission refused; retried after backoff'),
    ('attested',    'dead_letter', 'submission refused and retry budget exhausted'),
    ('attested',    'expired',     'deadline passed before submission'),
    ('submitted',   'delivered',   'final receipt on the destination'),
    ('submitted',   'failed',      'transaction reverted or dropped; retried after backoff'),
    ('submitted',   'dead_letter', 'transaction failed and retry budget exhausted'),
    ('submitted',   'attested',    'transaction dropped before inclusion; resubmit'),
    ('submitted',   'expired',     'deadline passed before inclusion'),
    ('failed',      'attested',    'backoff elapsed; ready to submit again'),
    ('failed',      'delivered',   'an earlier transaction turned out to be final'),
    ('failed',      'dead_letter', 'retry budget exhausted'),
    ('failed',      'expired',     'deadline passed while waiting to retry'),
    ('dead_letter', 'attested',    'operator retry');

CREATE FUNCTION messages_enforce_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
        SELECT 1 FROM message_status_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status
    ) THEN
        RAISE EXCEPTION 'illegal message status transition % -> % for message %',
            OLD.status, NEW.status, encode(OLD.id, 'hex')
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER messages_enforce_transition
    BEFORE UPDATE OF status ON messages
    FOR EACH ROW EXECUTE FUNCTION messages_enforce_transition();

-- ---------------------------------------------------------------------------
-- Lifecycle log: append-only and hash-chained
-- ---------------------------------------------------------------------------
CREATE TABLE lifecycle_log (
    seq          bigint PRIMARY KEY CHECK (seq >= 1),
    message_id   bytea REFERENCES messages (id),
    event        text NOT NULL CHECK (event IN (
                     'observed', 'verified', 'attested', 'submitted', 'delivered',
                     'failed', 'dead_letter', 'expired', 'rejected',
                     'checkpoint', 'attestation', 'operator')),
    evidence     jsonb NOT NULL,
    actor        text NOT NULL,
    created_at   timestamptz NOT NULL,
    prev_hash    bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    row_hash     bytea NOT NULL CHECK (octet_length(row_hash) = 32)
);
CREATE INDEX lifecycle_log_message_idx ON lifecycle_log (message_id, seq) WHERE message_id IS NOT NULL;
CREATE INDEX lifecycle_log_created_at_idx ON lifecycle_log (created_at);
COMMENT ON TABLE lifecycle_log IS 'Append-only history of every step, hash-chained: row_hash = sha256(canonical row bytes including prev_hash). seq, prev_hash, row_hash and created_at are assigned by a trigger under an advisory lock; UPDATE, DELETE and TRUNCATE are refused.';
COMMENT ON COLUMN lifecycle_log.event IS 'PERSISTED enum: the message status entered (observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected) or a non-message event (checkpoint | attestation | operator).';

-- The canonical bytes of a log row (see docs/schema.md, "Hash chain").
CREATE FUNCTION lifecycle_log_row_bytes(
    p_seq bigint, p_prev_hash bytea, p_message_id bytea, p_event text, p_actor text,
    p_created_at timestamptz, p_evidence jsonb
) RETURNS bytea
LANGUAGE sql STABLE AS $$
    SELECT convert_to('isthmus.lifecycle_log.v1', 'UTF8')
        || int8send(p_seq)
        || p_prev_hash
        || CASE WHEN p_message_id IS NULL THEN '\x00'::bytea ELSE '\x01'::bytea || p_message_id END
        || int4send(octet_length(convert_to(p_event, 'UTF8'))) || convert_to(p_event, 'UTF8')
        || int4send(octet_length(convert_to(p_actor, 'UTF8'))) || convert_to(p_actor, 'UTF8')
        || int8send((extract(epoch FROM p_created_at) * 1000000)::bigint)
        || int4send(octet_length(convert_to(p_evidence::text, 'UTF8')))
        || convert_to(p_evidence::text, 'UTF8')
$$;

CREATE FUNCTION lifecycle_log_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    head_seq  bigint;
    head_hash bytea;
BEGIN
    -- One writer at a time: the lock is held until the transaction ends, so the
    -- head read below is the head the next writer will chain onto (no fork).
    PERFORM pg_advisory_xact_lock(7350213370001);
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
CREATE TRIGGER lifecycle_log_chain
    BEFORE INSERT ON lifecycle_log
    FOR EACH ROW EXECUTE FUNCTION lifecycle_log_chain();

CREATE FUNCTION lifecycle_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'lifecycle_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER lifecycle_log_no_update_delete
    BEFORE UPDATE OR DELETE ON lifecycle_log
    FOR EACH ROW EXECUTE FUNCTION lifecycle_log_refuse_change();
CREATE TRIGGER lifecycle_log_no_truncate
    BEFORE TRUNCATE ON lifecycle_log
    FOR EACH STATEMENT EXECUTE FUNCTION lifecycle_log_refuse_change();

-- ---------------------------------------------------------------------------
-- Checkpoints and attestations
-- ---------------------------------------------------------------------------
CREATE TABLE checkpoints (
    digest        bytea PRIMARY KEY CHECK (octet_length(digest) = 32),
    origin        bigint NOT NULL REFERENCES ledgers (id),
    outbox        bytea NOT NULL CHECK (octet_length(outbox) = 32),
    root          bytea NOT NULL CHECK (octet_length(root) = 32),
    count         bigint NOT NULL CHECK (count BETWEEN 0 AND 4294967295),
    block_number  bigint NOT NULL CHECK (block_number >= 0),
    block_hash    bytea NOT NULL CHECK (octet_length(block_hash) = 32),
    evidence      jsonb NOT NULL DEFAULT '{}'::jsonb,
    recorded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkpoints_origin_idx ON checkpoints (origin, block_number);
COMMENT ON TABLE checkpoints IS 'Outbox commitments (root, count) proved at a final source block; digest is the domain-separated value members sign.';

CREATE TABLE attestations (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checkpoint_digest  bytea NOT NULL CHECK (octet_length(checkpoint_digest) = 32),
    signer             bytea NOT NULL CHECK (octet_length(signer) = 20),
    member             text,
    signature          bytea NOT NULL CHECK (octet_length(signature) = 65),
    outcome            text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason             text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'refused') = (reason IS NOT NULL)),
    UNIQUE (checkpoint_digest, signer, signature)
);
CREATE INDEX attestations_digest_idx ON attestations (checkpoint_digest, outcome);
COMMENT ON TABLE attestations IS 'secp256k1 signatures (r||s||v) over a checkpoint digest, our own and our peers'', with whether this relayer accepted them. No foreign key to checkpoints: a signature for an unknown checkpoint is recorded as refused.';
COMMENT ON COLUMN attestations.outcome IS 'PERSISTED enum: accepted | refused (reason says why).';

-- ---------------------------------------------------------------------------
-- Deliveries
-- ---------------------------------------------------------------------------
CREATE TABLE deliveries (
    message_id         bytea PRIMARY KEY REFERENCES messages (id),
    destination        bigint NOT NULL CHECK (destination BETWEEN 0 AND 4294967295),
    tx_hash            bytea NOT NULL CHECK (octet_length(tx_hash) = 32),
    block_number       bigint NOT NULL CHECK (block_number >= 0),
    block_hash         bytea CHECK (octet_length(block_hash) = 32),
    gas_used           bigint CHECK (gas_used >= 0),
    checkpoint_digest  bytea CHECK (octet_length(checkpoint_digest) = 32),
    batch_index        integer NOT NULL DEFAULT 0 CHECK (batch_index >= 0),
    batch_size         integer NOT NULL DEFAULT 1 CHECK (batch_size >= 1 AND batch_index < batch_size),
    delivered_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deliveries_tx_idx ON deliveries (tx_hash);
CREATE INDEX deliveries_destination_time_idx ON deliveries (destination, delivered_at);
COMMENT ON TABLE deliveries IS 'Final delivery of a message on its destination: the transaction, its block, gas, and its place in a batch (messages sharing tx_hash).';

-- ---------------------------------------------------------------------------
-- Operator actions
-- ---------------------------------------------------------------------------
CREATE TABLE operator_actions (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    operator              text NOT NULL CHECK (operator <> ''),
    action                text NOT NULL CHECK (action IN (
                              'retry', 'dead_letter', 'expire', 'pause_route',
                              'resume_route', 'note')),
    reason                text NOT NULL CHECK (reason <> ''),
    message_id            bytea REFERENCES messages (id),
    route_source          bigint CHECK (route_source BETWEEN 0 AND 4294967295),
    route_destination     bigint CHECK (route_destination BETWEEN 0 AND 4294967295),
    details               jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((route_source IS NULL) = (route_destination IS NULL))
);
COMMENT ON TABLE operator_actions IS 'Manual interventions: who (operator), what (action, target), why (reason). Each is also logged in lifecycle_log as event operator.';
COMMENT ON COLUMN operator_actions.action IS 'PERSISTED enum: retry | dead_letter | expire | pause_route | resume_route | note.';

-- ---------------------------------------------------------------------------
-- Views for the usual questions
-- ---------------------------------------------------------------------------
CREATE VIEW message_status_v AS
SELECT m.id,
       encode(m.id, 'hex')          AS id_hex,
       m.origin,
       m.destination,
       m.nonce,
       m.status,
       m.attempts,
       m.last_error,
       m.next_attempt_at,
       m.observed_at,
       m.updated_at,
       last.seq                     AS latest_seq,
       last.event                   AS latest_event,
       last.actor                   AS latest_actor,
       last.created_at              AS latest_event_at,
       d.tx_hash                    AS delivery_tx_hash,
       d.delivered_at
FROM messages m
LEFT JOIN LATERAL (
    SELECT l.seq, l.event, l.actor, l.created_at
    FROM lifecycle_log l
    WHERE l.message_id = m.id
    ORDER BY l.seq DESC
    LIMIT 1
) last ON true
LEFT JOIN deliveries d ON d.message_id = m.id;
COMMENT ON VIEW message_status_v IS 'Where is message X: current status, route, latest logged event and delivery, one row per message.';

CREATE VIEW route_deliveries_v AS
SELECT m.origin,
       m.destination,
       m.id                                                   AS message_id,
       m.nonce,
       m.observed_at,
       d.delivered_at,
       extract(epoch FROM (d.delivered_at - m.observed_at))  AS latency_seconds,
       d.tx_hash,
       d.block_number,
       d.gas_used,
       d.batch_index,
       d.batch_size
FROM deliveries d
JOIN messages m ON m.id = d.message_id;
COMMENT ON VIEW route_deliveries_v IS 'Delivered messages per route with delivery time and latency; filter on delivered_at for time ranges.';

CREATE VIEW route_stats_v AS
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
           FILTER (WHERE d.message_id IS NOT NULL)               AS latency_p95_seconds
FROM messages m
LEFT JOIN deliveries d ON d.message_id = m.id
GROUP BY m.origin, m.destination;
COMMENT ON VIEW route_stats_v IS 'Per route: message counts by status and delivery latency percentiles (observed_at -> delivered_at, seconds).';

-- ---------------------------------------------------------------------------
-- Read-only auditor role
-- ---------------------------------------------------------------------------
-- Roles are cluster-wide while this migration runs once per database, possibly in
-- several databases at once: creating the role must tolerate both an existing role
-- (duplicate_object) and a concurrent creator (unique_violation).
DO $$
BEGIN
    CREATE ROLE isthmus_auditor NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END;
$$;
GRANT USAGE ON SCHEMA public TO isthmus_auditor;
GRANT SELECT ON
    ledgers, progress_cursors, messages, message_status_transitions, lifecycle_log,
    checkpoints, attestations, deliveries, operator_actions,
    message_status_v, route_deliveries_v, route_stats_v
    TO isthmus_auditor;
