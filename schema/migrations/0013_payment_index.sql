-- The escrow metric (`Store::open_payments`) reads the payments of the apps an
-- operator lists (`ledgers[].payment_apps`) from a per-app nonce on: 160-byte bodies
-- by origin, sender and nonce. This partial index holds only messages of that size,
-- so the scan reads neither the other messages nor a payment app's settled past, and
-- other messages' inserts do not maintain it.
CREATE INDEX messages_payments_idx ON messages (origin, sender, nonce)
    WHERE octet_length(body) = 160;
