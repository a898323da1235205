-- The destination is the truth, for expiries too. A member records a message
-- `expired` when its deadline has passed by the member's clock and nothing shows it
-- delivered yet; another member's delivery in a block at or before the deadline may
-- become final only afterwards. Its history then moves the message to `delivered`
-- from the destination's evidence (the delivering transaction and block), instead
-- of showing an expiry that the chain contradicts.
INSERT INTO message_status_transitions (from_status, to_status, meaning) VALUES
    ('expired', 'delivered', 'the destination shows it delivered (by another submission, before the deadline) after this relayer recorded it expired');
