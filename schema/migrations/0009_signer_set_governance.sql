-- Signer-set updates governed by the consortium: each member's steps of an update
-- (propose, sign, submit) are operator actions in its hash-chained history, with
-- the update, its digest and, for a submission, the transaction or the refusal.

ALTER TABLE operator_actions DROP CONSTRAINT operator_actions_action_check;
ALTER TABLE operator_actions ADD CONSTRAINT operator_actions_action_check CHECK (action IN (
    'retry', 'dead_letter', 'expire', 'pause_route', 'resume_route', 'note',
    'reset_light_client', 'signer_set_propose', 'signer_set_sign', 'signer_set_submit'));
COMMENT ON COLUMN operator_actions.action IS 'PERSISTED enum: retry | dead_letter | expire | pause_route | resume_route | note | reset_light_client | signer_set_propose | signer_set_sign | signer_set_submit.';
COMMENT ON COLUMN operator_actions.ledger_id IS 'The ledger an action on a ledger names: reset_light_client, or the destination whose signer set a signer_set_* action updates.';
