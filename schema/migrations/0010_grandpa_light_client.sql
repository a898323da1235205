-- Substrate ledgers followed by the GRANDPA light client from a trust anchor.
--
-- The tracker's state (the authority set in force, the change pending, the last
-- finalized block) is kept in light_client_states like a sealed EVM ledger's,
-- committed with the observe cursor it covers: checkpoint_* is the anchor block, and
-- state holds the set and the tracker's SCALE state (docs/schema.md). The headers it
-- finalized are kept in light_client_headers, each with the justification that
-- finalized it (its own block's or a descendant's) in finality_proof.

ALTER TABLE light_client_states DROP CONSTRAINT light_client_states_finality_check;
ALTER TABLE light_client_states ADD CONSTRAINT light_client_states_finality_check
    CHECK (finality IN ('qbft', 'ibft2', 'ibft', 'clique', 'grandpa'));
COMMENT ON COLUMN light_client_states.finality IS 'PERSISTED enum: the consensus protocol in force at the head: qbft | ibft2 | ibft | clique | grandpa.';
COMMENT ON COLUMN light_client_states.validators IS 'EVM: the validator (Clique: signer) set in force after the head, 20-byte addresses, sorted. GRANDPA: empty; the authority set is in state.';

ALTER TABLE light_client_headers DROP CONSTRAINT light_client_headers_finality_check;
ALTER TABLE light_client_headers ADD CONSTRAINT light_client_headers_finality_check
    CHECK (finality IN ('qbft', 'ibft2', 'ibft', 'clique', 'grandpa'));
ALTER TABLE light_client_headers ADD COLUMN finality_proof jsonb;
COMMENT ON COLUMN light_client_headers.header_rlp IS 'The header as served: RLP (EVM, seals included) or SCALE (Substrate).';
COMMENT ON COLUMN light_client_headers.finality_proof IS 'GRANDPA: the justification that finalized this header, its own or a descendant''s whose headers link back to it: {justified: {number, hash}, set_id, round, signed_weight}. Null for EVM headers (their seals are in sealed_by).';
