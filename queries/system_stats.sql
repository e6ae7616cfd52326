-- Daily system statistics, one row per UTC day: the seed's system_stats row shape.
--
-- Read from the system_stats view, which finalizes the daily aggregate states that a
-- materialized view keeps from every block inserted into request_logs (see
-- schemas/chddl/migrations/0005_system_stats.sql for each column's definition). Days
-- are UTC days (the seed's), not Pacific quota days.
--
-- The rollup is additive: the processors drop redelivered events before they insert,
-- so each event is counted once; a duplicate written by two racing writers (rare, see
-- processors/chsink) is counted twice here until the day is rebuilt by replay, while
-- the request_logs queries (FINAL) count it once.
--
-- @param from Date today-7d first day (UTC)
-- @param to   Date today    last day (UTC), inclusive
-- @example --param from=2025-03-01 --param to=2025-03-31
SELECT
    date,
    total_requests,
    successful_requests,
    failed_requests,
    openai_requests,
    claude_requests,
    gemini_requests,
    unknown_requests,
    total_tokens_used,
    total_input_tokens,
    total_output_tokens,
    average_response_time,
    min_response_time,
    max_response_time,
    error_rate,
    timeout_count,
    rate_limit_count,
    auth_error_count,
    total_request_size,
    total_response_size,
    stream_request_count,
    unique_api_keys,
    active_api_keys,
    updated_at
FROM system_stats
WHERE date >= {from:Date} AND date <= {to:Date}
ORDER BY date
