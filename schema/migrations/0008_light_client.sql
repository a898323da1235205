-- Consortium EVM ledgers followed by the light client from a trusted checkpoint.
--
-- A ledger whose finality is proven by seals (qbft, ibft2, ibft, clique) keeps the
-- light client's state here, committed in the same transaction as the observe
-- cursor it covers: a restart resumes from it, with no re-verification from the
-- checkpoint and no trust in the node. The headers it verified most recently are
-- kept too (a bounded window), so that checkpoints at those blocks can be proven
-- and attested after a restart without asking the node for their headers again.

-- IBFT 1.0 (GoQuorum's "istanbul") joins the finality modes.
ALTER TABLE ledgers DROP CONSTRAINT ledgers_finality_check;
ALTER TABLE ledgers ADD CONSTRAINT ledgers_finality_check
    CHECK (finality IN ('qbft', 'ibft2', 'ibft', 'clique', 'finalized-tag', 'grandpa'));
COMMENT ON COLUMN ledgers.finality IS 'PERSISTED enum: how finality is established: qbft | ibft2 | ibft (IBFT 1.0) | clique (consortium seals, verified by the light client from a trusted checkpoint), finalized-tag (trusts the node''s finalized tag), grandpa (verified justifications).';

-- A light client that halts records the evidence in the history.
ALTER TABLE lifecycle_log DROP CONSTRAINT lifecycle_log_event_check;
ALTER TABLE lifecycle_log ADD CONSTRAINT lifecycle_log_event_check CHECK (event IN (
    'observed', 'verified', 'attested', 'submitted', 'delivered',
    'failed', 'dead_letter', 'expired', 'rejected',
    'checkpoint', 'attestation', 'operator', 'consensus_fault'));
COMMENT ON COLUMN lifecycle_log.event IS 'PERSISTED enum: the message status entered (observed | verified | attested | submitted | delivered | failed | dead_letter | expired | rejected) or a non-message event (checkpoint | attestation | operator | consensus_fault).';

-- Resetting a stored light-client state is an operator action.
ALTER TABLE operator_actions DROP CONSTRAINT operator_actions_action_check;
ALTER TABLE operator_actions ADD CONSTRAINT operator_actions_action_check CHECK (action IN (
    'retry', 'dead_letter', 'expire', 'pause_route', 'resume_route', 'note',
    'reset_light_client'));
ALTER TABLE operator_actions ADD COLUMN ledger_id bigint
    CHECK (ledger_id BETWEEN 0 AND 4294967295);
COMMENT ON COLUMN operator_actions.action IS 'PERSISTED enum: retry | dead_letter | expire | pause_route | resume_route | note | reset_light_client.';
COMMENT ON COLUMN operator_actions.ledger_id IS 'The ledger an action on a ledger (reset_light_client) names.';

CREATE TABLE light_client_states (
    ledger_id          bigint PRIMARY KEY REFERENCES ledgers (id),
    finality           text NOT NULL CHECK (finality IN ('qbft', 'ibft2', 'ibft', 'clique')),
    checkpoint_number  bigint NOT NULL CHECK (checkpoint_number >= 0),
    checkpoint_hash    bytea NOT NULL CHECK (octet_length(checkpoint_hash) = 32),
    head_number        bigint NOT NULL CHECK (head_number >= checkpoint_number),
    head_hash          bytea NOT NULL CHECK (octet_length(head_hash) = 32),
    validators         bytea[] NOT NULL,
    state              jsonb NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE light_client_states IS 'Per sealed EVM ledger: the light client''s verified head and consensus state (validator set, pending votes, recent signers), written with the observe cursor it covers. checkpoint_* is the trusted checkpoint it was started from; a relayer configured with another checkpoint refuses to start until an operator resets the state (isthmus light-client reset, recorded in operator_actions and lifecycle_log).';
COMMENT ON COLUMN light_client_states.finality IS 'PERSISTED enum: the consensus protocol in force at the head: qbft | ibft2 | ibft | clique.';
COMMENT ON COLUMN light_client_states.validators IS 'The validator (Clique: signer) set in force after the head, 20-byte addresses, sorted.';
COMMENT ON COLUMN light_client_states.state IS 'The light client''s full state as the relayer resumes it (versioned JSON; see docs/schema.md).';

CREATE TABLE light_client_headers (
    ledger_id     bigint NOT NULL REFERENCES ledgers (id),
    number        bigint NOT NULL CHECK (number >= 0),
    hash          bytea NOT NULL CHECK (octet_length(hash) = 32),
    parent_hash   bytea NOT NULL CHECK (octet_length(parent_hash) = 32),
    state_root    bytea NOT NULL CHECK (octet_length(state_root) = 32),
    finality      text NOT NULL CHECK (finality IN ('qbft', 'ibft2', 'ibft', 'clique')),
    sealed_by     bytea[] NOT NULL,
    validators    bytea[] NOT NULL,
    header_rlp    bytea NOT NULL,
    verified_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ledger_id, number)
);
COMMENT ON TABLE light_client_headers IS 'The most recent headers the light client verified, per ledger (a bounded window below the head; older rows are pruned as the head moves): the header, the validators whose seals finalized it, and the set they were checked against. Checkpoints name their block; this table says what proved it.';
COMMENT ON COLUMN light_client_headers.sealed_by IS 'Addresses recovered from the header''s seals (BFT: the committing validators; Clique: the signer).';
COMMENT ON COLUMN light_client_headers.validators IS 'The validator (signer) set the seals were checked against, sorted.';

GRANT SELECT ON light_client_states, light_client_headers TO isthmus_auditor;
