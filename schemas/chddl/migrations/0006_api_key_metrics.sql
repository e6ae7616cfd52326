-- api_key_metrics: the seed's per-key metrics, kept by ClickHouse from the attempts of
-- every request (so a key that failed and was failed over counts its failure), never by
-- read-modify-write in Go.
--
-- api_key_metrics_state  AggregatingMergeTree, one row per key after merges, fed by a
--                        materialized view that ARRAY JOINs request_logs.attempts.
-- api_key_failures       one row per failed attempt (ReplacingMergeTree, same retention as
--                        request_logs): what consecutive_failures is counted from.
-- api_key_metrics        the view with the seed's row shape.
--
-- Definitions (per attempt, i.e. per upstream call made with the key):
--   total_requests          attempts with the key
--   successful_requests     attempts whose failure is '' (or 'none')
--   failed_requests         total_requests - successful_requests
--   average/min/max_response_time, last_response_time
--                           attempt latency_ms; "last" is the latest attempt, ordered by
--                           (ts, event id, attempt number) so ties resolve the same way on
--                           every replay
--   consecutive_failures    failed attempts after the key's last successful attempt (same
--                           order) whose failure is the key's or its project's: quota
--                           (minute_quota, day_quota, quota_unknown) or credentials
--                           (key_invalid, forbidden). upstream, timeout, network and client
--                           failures are not the key's fault (DESIGN.md §3) and do not count.
--   is_healthy              consecutive_failures < 3 and the key's latest disable/enable
--                           event in key_state_log is not a disable
--   last_failure_time       the latest failed attempt of any kind (epoch 0 when none)
--   total_input_tokens      attempts' input_tokens where the attempt consumed quota (counted)
--   total_output_tokens     the request's output_tokens, credited to the key of its last attempt
--   total_tokens            input + output
--   last_used / first_seen  latest / earliest attempt
--   created_at              first_seen (the pool's add time is in key_state_log, kind key_added)
--   last_health_check,
--   updated_at              the latest of last_used and the key's latest key_state_log event
CREATE TABLE IF NOT EXISTS {{local "api_key_metrics_state"}}{{onCluster}}
(
    key_hash                  String,
    total_requests_state      AggregateFunction(count),
    successful_requests_state AggregateFunction(sum, UInt64),
    response_time_sum_state   AggregateFunction(sum, UInt64),
    min_response_time_state   AggregateFunction(min, UInt32),
    max_response_time_state   AggregateFunction(max, UInt32),
    last_response_time_state  AggregateFunction(argMax, UInt32, Tuple({{datetime}}, String, UInt32)),
    last_success_state        AggregateFunction(maxIf, Tuple({{datetime}}, String, UInt32), UInt8),
    last_failure_time_state   AggregateFunction(maxIf, {{datetime}}, UInt8),
    input_tokens_state        AggregateFunction(sum, UInt64),
    output_tokens_state       AggregateFunction(sum, UInt64),
    last_used_state           AggregateFunction(max, {{datetime}}),
    first_seen_state          AggregateFunction(min, {{datetime}})
)
ENGINE = {{engine "AggregatingMergeTree" "api_key_metrics_state"}}
ORDER BY key_hash;

{{distributed "api_key_metrics_state" "sipHash64(key_hash)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "api_key_metrics_state_mv"}}{{onCluster}}
TO {{local "api_key_metrics_state"}}
AS SELECT
    a.key_hash AS key_hash,
    countState() AS total_requests_state,
    sumState(toUInt64(a.failure = '' OR a.failure = 'none')) AS successful_requests_state,
    sumState(toUInt64(a.latency_ms)) AS response_time_sum_state,
    minState(a.latency_ms) AS min_response_time_state,
    maxState(a.latency_ms) AS max_response_time_state,
    argMaxState(a.latency_ms, (a.ts, id, n)) AS last_response_time_state,
    maxIfState((a.ts, id, n), toUInt8(a.failure = '' OR a.failure = 'none')) AS last_success_state,
    maxIfState(a.ts, toUInt8(NOT (a.failure = '' OR a.failure = 'none'))) AS last_failure_time_state,
    sumState(a.input_tokens * a.counted) AS input_tokens_state,
    sumState(if(n = length(attempts.key_hash), output_tokens, toUInt64(0))) AS output_tokens_state,
    maxState(a.ts) AS last_used_state,
    minState(a.ts) AS first_seen_state
FROM {{local "request_logs"}}
ARRAY JOIN attempts AS a, arrayEnumerate(attempts.key_hash) AS n
GROUP BY key_hash;

CREATE TABLE IF NOT EXISTS {{local "api_key_failures"}}{{onCluster}}
(
    key_hash String,
    ts       {{datetime}},
    event_id String,
    attempt  UInt32,
    project  {{lcFromView "String"}},
    model    {{lc "String"}},
    status   UInt16,
    failure  {{lcFromView "String"}}
)
ENGINE = {{engine "ReplacingMergeTree" "api_key_failures"}}
PARTITION BY toYYYYMMDD(ts)
ORDER BY (key_hash, ts, event_id, attempt)
{{ttl "toDateTime(ts)" .RetentionDays}};

{{distributed "api_key_failures" "sipHash64(key_hash)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "api_key_failures_mv"}}{{onCluster}}
TO {{local "api_key_failures"}}
AS SELECT
    a.key_hash AS key_hash,
    a.ts AS ts,
    id AS event_id,
    n AS attempt,
    a.project AS project,
    model,
    a.status AS status,
    a.failure AS failure
FROM {{local "request_logs"}}
ARRAY JOIN attempts AS a, arrayEnumerate(attempts.key_hash) AS n
WHERE NOT (a.failure = '' OR a.failure = 'none');

CREATE VIEW IF NOT EXISTS {{table "api_key_metrics"}}{{onCluster}}
AS SELECT
    key_hash,
    total_requests,
    successful_requests,
    failed_requests,
    average_response_time,
    last_response_time,
    min_response_time,
    max_response_time,
    toUInt8(consecutive_failures < 3 AND disabled = 0) AS is_healthy,
    greatest(last_used, last_state_change) AS last_health_check,
    consecutive_failures,
    last_failure_time,
    total_input_tokens + total_output_tokens AS total_tokens,
    total_input_tokens,
    total_output_tokens,
    last_used,
    first_seen,
    first_seen AS created_at,
    greatest(last_used, last_state_change) AS updated_at
FROM
(
    SELECT *
    FROM
    (
        SELECT
            key_hash,
            countMerge(total_requests_state) AS total_requests,
            sumMerge(successful_requests_state) AS successful_requests,
            toUInt64(countMerge(total_requests_state) - sumMerge(successful_requests_state)) AS failed_requests,
            sumMerge(response_time_sum_state) / countMerge(total_requests_state) AS average_response_time,
            argMaxMerge(last_response_time_state) AS last_response_time,
            minMerge(min_response_time_state) AS min_response_time,
            maxMerge(max_response_time_state) AS max_response_time,
            maxIfMerge(last_failure_time_state) AS last_failure_time,
            sumMerge(input_tokens_state) AS total_input_tokens,
            sumMerge(output_tokens_state) AS total_output_tokens,
            maxMerge(last_used_state) AS last_used,
            minMerge(first_seen_state) AS first_seen
        FROM {{table "api_key_metrics_state"}}
        GROUP BY key_hash
    ) AS totals
    ANY LEFT JOIN
    (
        -- Failures after the last success. uniqExact, not count: a failure written twice
        -- by racing writers still counts once.
        SELECT
            key_hash,
            toUInt64(uniqExact(event_id, attempt)) AS consecutive_failures
        FROM {{table "api_key_failures"}}
        {{global}}ALL INNER JOIN
        (
            SELECT key_hash, maxIfMerge(last_success_state) AS last_success
            FROM {{table "api_key_metrics_state"}}
            GROUP BY key_hash
        ) AS successes USING key_hash
        WHERE toString(failure) IN ('minute_quota', 'day_quota', 'quota_unknown', 'key_invalid', 'forbidden')
          AND (ts, event_id, attempt) > last_success
        GROUP BY key_hash
    ) AS failures USING key_hash
) AS metrics
ANY LEFT JOIN
(
    SELECT
        key_hash,
        toUInt8(argMaxIf(toString(kind), (timestamp, id), toString(kind) IN ('disable', 'enable')) = 'disable') AS disabled,
        max(timestamp) AS last_state_change
    FROM {{table "key_state_log"}}
    WHERE key_hash != ''
    GROUP BY key_hash
) AS states USING key_hash;
