-- A message another member delivered, seen on the destination before this relayer
-- verified or attested it, goes straight to `delivered`: its history then shows
-- what this relayer did (observed it, saw its delivery) and no verification or
-- attestation it never made.
INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('observed', 'delivered', 'another member''s submission delivered it; seen on the destination before this relayer verified it'),
    ('verified', 'delivered', 'another member''s submission delivered it; seen on the destination before this relayer attested it');
