-- The destination is the truth. A member that dead-lettered a message (its
-- recipient refused every attempt here) may see it delivered on the destination
-- afterwards: another member's submission succeeded, or an operator's retry
-- elsewhere did. Its history then moves the message to `delivered` from the
-- destination's evidence (the delivering transaction and block), instead of
-- showing a dead letter that the chain contradicts.
INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('dead_letter', 'delivered', 'the destination shows it delivered (by another submission) after this relayer dead-lettered it');
