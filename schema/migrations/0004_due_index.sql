-- Claims (`Store::claim_ready_turns`) read the pending messages of a destination that
-- are due: not held back (`next_attempt_at` NULL or past). This partial index holds
-- only pending messages, so a claim reads neither the delivered history nor, through
-- the two `next_attempt_at` conditions, the messages held back for another member's
-- turn; before it, every claim scanned all messages of the route.
CREATE INDEX messages_due_idx ON messages (destination, next_attempt_at)
    WHERE status IN ('observed', 'verified', 'attested', 'submitted', 'failed');
