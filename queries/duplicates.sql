-- Rows not yet deduplicated in a ReplacingMergeTree table, in a time window.
--
-- The processors drop redelivered events before they insert, so duplicates are rare: a
-- race between two writers holding the same records after a rebalance can store an
-- event twice, until a background merge collapses it (see processors/chsink). The
-- queries here read with FINAL or uniqExact(id) and count such an event once; this
-- shows how many are pending. OPTIMIZE TABLE ... FINAL (storage_recommendations)
-- collapses them at once.
--
--   rows          stored rows
--   distinct_ids  distinct event ids (what the queries count)
--   duplicates    rows - distinct_ids
--
-- @param table Identifier(request_logs|error_logs|key_state_log|audit_log) request_logs table to check
-- @param from  DateTime now-24h start of the window (inclusive, UTC)
-- @param to    DateTime now     end of the window (exclusive, UTC)
-- @example --param table=error_logs --param from=now-7d
SELECT
    count() AS rows,
    uniqExact(id) AS distinct_ids,
    rows - distinct_ids AS duplicates
FROM {table:Identifier}
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
