-- The clients that used the most tokens in a window, by gateway token.
--
-- A client is the gateway token it presented (token_hash, the hash the token store
-- keeps; the token itself is never stored). In pass-through mode clients send their own
-- Gemini keys and have no token: they share the row with token_hash ''. FINAL reads each
-- request once. Ties in total_tokens are broken by token_hash.
--
-- @param from  DateTime        now-24h start of the window (inclusive, UTC)
-- @param to    DateTime        now     end of the window (exclusive, UTC)
-- @param limit UInt(1..10000)  20      at most this many clients
-- @example --param from=now-7d --param limit=5
SELECT
    token_hash,
    count() AS requests,
    countIf(has_error = 1) AS failed_requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(total_tokens) AS total_tokens,
    uniqExact(model) AS models,
    uniqExact(client_ip) AS client_ips,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen
FROM request_logs FINAL
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
GROUP BY token_hash
ORDER BY total_tokens DESC, token_hash
LIMIT {limit:UInt64}
