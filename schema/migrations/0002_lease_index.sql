-- Leased messages, for freeing the leases of stopped relayer processes
-- (`Store::release_orphaned_leases`, run at every start and every 30 s): without it
-- that check reads the whole messages table, whose size grows with history.
CREATE INDEX messages_claimed_idx ON messages (claimed_by) WHERE claimed_by IS NOT NULL;
