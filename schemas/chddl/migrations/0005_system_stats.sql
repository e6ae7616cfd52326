-- system_stats: the seed's daily statistics, maintained by ClickHouse. A materialized view
-- turns every block inserted into request_logs into partial aggregate states of its UTC
-- day in system_stats_daily (AggregatingMergeTree; merges combine them), and the view
-- system_stats finalizes them into the seed's row shape, one row per date.
--
-- 18.16 has no SimpleAggregateFunction, so every column is an AggregateFunction state
-- written with -State and read with -Merge; both engines accept the same definitions.
-- State columns end in _state so the view's aliases never shadow them.
--
-- Definitions (counted per request, as the client saw it):
--   successful / failed   has_error = 0 / 1
--   openai/claude/gemini  client_type; unknown_requests = any other client_type
--   tokens                request_logs input_tokens, output_tokens, total_tokens
--   average_response_time sum(response_time) / total_requests (ms)
--   error_rate            failed_requests / total_requests (0..1)
--   timeout_count         error_type = 'timeout'                        (schemas.ErrTimeout)
--   rate_limit_count      error_type IN ('rate_limit', 'quota_exhausted') (ErrRateLimited,
--                         ErrQuotaExhausted: the pool had no quota left for the client)
--   auth_error_count      error_type = 'auth_error'                     (schemas.ErrAuth)
--   stream_request_count  is_stream = 1
--   unique_api_keys       distinct Gemini keys the gateway called that day (every attempt's
--                         key, failed-over ones included)
--   active_api_keys       distinct keys with at least one successful attempt that day
--   updated_at            the time of the day's latest request (deterministic: a replay of
--                         the same events gives the same row)
CREATE TABLE IF NOT EXISTS {{local "system_stats_daily"}}{{onCluster}}
(
    date                      Date,
    total_requests_state      AggregateFunction(count),
    successful_requests_state AggregateFunction(sum, UInt64),
    failed_requests_state     AggregateFunction(sum, UInt64),
    openai_requests_state     AggregateFunction(sum, UInt64),
    claude_requests_state     AggregateFunction(sum, UInt64),
    gemini_requests_state     AggregateFunction(sum, UInt64),
    unknown_requests_state    AggregateFunction(sum, UInt64),
    total_tokens_state        AggregateFunction(sum, UInt64),
    input_tokens_state        AggregateFunction(sum, UInt64),
    output_tokens_state       AggregateFunction(sum, UInt64),
    response_time_sum_state   AggregateFunction(sum, UInt64),
    min_response_time_state   AggregateFunction(min, UInt32),
    max_response_time_state   AggregateFunction(max, UInt32),
    timeout_count_state       AggregateFunction(sum, UInt64),
    rate_limit_count_state    AggregateFunction(sum, UInt64),
    auth_error_count_state    AggregateFunction(sum, UInt64),
    request_size_state        AggregateFunction(sum, UInt64),
    response_size_state       AggregateFunction(sum, UInt64),
    stream_request_count_state AggregateFunction(sum, UInt64),
    unique_api_keys_state     AggregateFunction(uniqExactArray, Array(String)),
    active_api_keys_state     AggregateFunction(uniqExactArray, Array(String)),
    updated_at_state          AggregateFunction(max, {{datetime}})
)
ENGINE = {{engine "AggregatingMergeTree" "system_stats_daily"}}
PARTITION BY toYYYYMM(date)
ORDER BY date
{{ttl "date" .StatsRetentionDays}};

{{distributed "system_stats_daily" "toUInt32(date)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "system_stats_daily_mv"}}{{onCluster}}
TO {{local "system_stats_daily"}}
AS SELECT
    toDate(timestamp) AS date,
    countState() AS total_requests_state,
    sumState(toUInt64(has_error = 0)) AS successful_requests_state,
    sumState(toUInt64(has_error = 1)) AS failed_requests_state,
    sumState(toUInt64(toString(client_type) = 'openai')) AS openai_requests_state,
    sumState(toUInt64(toString(client_type) = 'claude')) AS claude_requests_state,
    sumState(toUInt64(toString(client_type) = 'gemini')) AS gemini_requests_state,
    sumState(toUInt64(toString(client_type) NOT IN ('openai', 'claude', 'gemini'))) AS unknown_requests_state,
    sumState(total_tokens) AS total_tokens_state,
    sumState(input_tokens) AS input_tokens_state,
    sumState(output_tokens) AS output_tokens_state,
    sumState(toUInt64(response_time)) AS response_time_sum_state,
    minState(response_time) AS min_response_time_state,
    maxState(response_time) AS max_response_time_state,
    sumState(toUInt64(toString(error_type) = 'timeout')) AS timeout_count_state,
    sumState(toUInt64(toString(error_type) IN ('rate_limit', 'quota_exhausted'))) AS rate_limit_count_state,
    sumState(toUInt64(toString(error_type) = 'auth_error')) AS auth_error_count_state,
    sumState(request_size) AS request_size_state,
    sumState(response_size) AS response_size_state,
    sumState(toUInt64(is_stream)) AS stream_request_count_state,
    uniqExactArrayState(arrayFilter(k -> k != '', arrayConcat(attempts.key_hash, [toString(api_key_hash)]))) AS unique_api_keys_state,
    uniqExactArrayState(arrayFilter((k, f) -> f = '' OR f = 'none', attempts.key_hash, attempts.failure)) AS active_api_keys_state,
    maxState(timestamp) AS updated_at_state
FROM {{local "request_logs"}}
GROUP BY date;

CREATE VIEW IF NOT EXISTS {{table "system_stats"}}{{onCluster}}
AS SELECT
    date,
    countMerge(total_requests_state) AS total_requests,
    sumMerge(successful_requests_state) AS successful_requests,
    sumMerge(failed_requests_state) AS failed_requests,
    sumMerge(openai_requests_state) AS openai_requests,
    sumMerge(claude_requests_state) AS claude_requests,
    sumMerge(gemini_requests_state) AS gemini_requests,
    sumMerge(unknown_requests_state) AS unknown_requests,
    sumMerge(total_tokens_state) AS total_tokens_used,
    sumMerge(input_tokens_state) AS total_input_tokens,
    sumMerge(output_tokens_state) AS total_output_tokens,
    sumMerge(response_time_sum_state) / countMerge(total_requests_state) AS average_response_time,
    minMerge(min_response_time_state) AS min_response_time,
    maxMerge(max_response_time_state) AS max_response_time,
    sumMerge(failed_requests_state) / countMerge(total_requests_state) AS error_rate,
    sumMerge(timeout_count_state) AS timeout_count,
    sumMerge(rate_limit_count_state) AS rate_limit_count,
    sumMerge(auth_error_count_state) AS auth_error_count,
    sumMerge(request_size_state) AS total_request_size,
    sumMerge(response_size_state) AS total_response_size,
    sumMerge(stream_request_count_state) AS stream_request_count,
    toUInt64(uniqExactArrayMerge(unique_api_keys_state)) AS unique_api_keys,
    toUInt64(uniqExactArrayMerge(active_api_keys_state)) AS active_api_keys,
    maxMerge(updated_at_state) AS updated_at
FROM {{table "system_stats_daily"}}
GROUP BY date;
