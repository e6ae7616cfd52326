-- migration request_logs
-- request_logs: one row per schemas.RequestEvent, the seed's request_logs with its column
-- names and meanings, plus the gateway's own columns (project, attempts, ttfb, usage detail).
--
--   id             = event_id (the dedupe key)
--   timestamp      = when the request arrived (event ts_ms; whole seconds on 18.16)
--   response_time  = latency in ms
--   input_tokens   = usage prompt + tool_use_prompt   (schemas.Usage.Input)
--   output_tokens  = usage candidates + thoughts      (schemas.Usage.Output)
--   total_tokens   = usage total, or input + output when the upstream gave no total
--   api_key_hash   = the key of the last attempt (the key that answered); '' when no key
--                    was used (cache hit, request rejected before any upstream call)
--   has_error      = status outside 2xx, or a stream cut short (RequestEvent.HasError)
--
-- ReplacingMergeTree: the processors drop events whose id is already stored before they
-- insert (so the materialized views below never see a redelivered event twice); a
-- duplicate that slips through a race between two writers is removed by merges, and
-- `FINAL` or uniqExact(id) count it once before that.
--
-- ORDER BY serves the seed's queries (time window, then key and model) and makes the
-- processors' dedupe check cheap: the check looks up the full sorting key of each event
-- of a batch, `(toStartOfHour(timestamp), api_key_hash, model, timestamp, id) IN <batch>`,
-- which reads only the granules that could hold those events, on 18.16 as on 26.x.
CREATE TABLE IF NOT EXISTS `gca`.`request_logs_local` ON CLUSTER `gca_cluster`
(
    id                     String,
    timestamp              DateTime64(3, 'UTC'),
    client_type            LowCardinality(String),
    client_ip              String,
    user_agent             String,
    api_key_hash           LowCardinality(String),
    model                  LowCardinality(String),
    original_model         LowCardinality(String),
    endpoint               LowCardinality(String),
    response_time          UInt32,
    status_code            UInt16,
    input_tokens           UInt64,
    output_tokens          UInt64,
    total_tokens           UInt64,
    is_stream              UInt8,
    has_error              UInt8,
    error_message          String,
    request_size           UInt64,
    response_size          UInt64,

    project                LowCardinality(String),
    token_hash             String,
    request_id             String,
    instance               LowCardinality(String),
    method                 LowCardinality(String),
    referer                String,
    error_type             LowCardinality(String),
    ttfb_ms                UInt32,
    prompt_tokens          UInt64,
    candidates_tokens      UInt64,
    thoughts_tokens        UInt64,
    cached_tokens          UInt64,
    tool_use_prompt_tokens UInt64,
    est_input_tokens       UInt64,
    interrupted            LowCardinality(String),
    cache_hit              UInt8,

    -- One element per upstream call, in order; the last one is the key that answered.
    -- failure is '' for a success, else gemini.Failure's name, "timeout" or "network".
    attempts Nested
    (
        key_hash       String,
        project        String,
        ts             DateTime64(3, 'UTC'),
        status         UInt16,
        failure        String,
        latency_ms     UInt32,
        input_tokens   UInt64,
        counted        UInt8,
        retry_after_ms UInt32
    ),

    INDEX request_id_bloom request_id TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/gca/request_logs_local', '{replica}')
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), api_key_hash, model, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS `gca`.`request_logs` ON CLUSTER `gca_cluster` AS `gca`.`request_logs_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `request_logs_local`, sipHash64(id));

-- migration key_state_log
-- key_state_log: one row per schemas.KeyStateEvent (cool-downs, disabled and enabled keys,
-- keys added and removed), id = event_id. until is the cool-down's absolute end (epoch 0
-- when the event has none). Low volume: monthly partitions.
CREATE TABLE IF NOT EXISTS `gca`.`key_state_log_local` ON CLUSTER `gca_cluster`
(
    id             String,
    timestamp      DateTime64(3, 'UTC'),
    instance       LowCardinality(String),
    kind           LowCardinality(String),
    key_hash       String,
    project        LowCardinality(String),
    model          LowCardinality(String),
    reason         LowCardinality(String),
    source         LowCardinality(String),
    quota_id       LowCardinality(String),
    rpm_exceeded   UInt8,
    tpm_exceeded   UInt8,
    rpd_exceeded   UInt8,
    until          DateTime64(3, 'UTC'),
    retry_delay_ms UInt32,
    request_id     String,
    status         UInt16,
    message        String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/gca/key_state_log_local', '{replica}')
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS `gca`.`key_state_log` ON CLUSTER `gca_cluster` AS `gca`.`key_state_log_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `key_state_log_local`, sipHash64(project));

-- migration audit_log
-- audit_log: one row per schemas.AuditEvent (operator actions that are not key state),
-- id = event_id. params is the event's map as parallel arrays sorted by key (18.16 has no
-- Map type). Kept without TTL: the audit trail outlives the request logs.
CREATE TABLE IF NOT EXISTS `gca`.`audit_log_local` ON CLUSTER `gca_cluster`
(
    id        String,
    timestamp DateTime64(3, 'UTC'),
    instance  LowCardinality(String),
    actor     String,
    action    LowCardinality(String),
    target    String,
    params Nested
    (
        key   String,
        value String
    ),
    result    String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/gca/audit_log_local', '{replica}')
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, id);

CREATE TABLE IF NOT EXISTS `gca`.`audit_log` ON CLUSTER `gca_cluster` AS `gca`.`audit_log_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `audit_log_local`, sipHash64(id));

-- migration error_logs
-- error_logs: the seed's error_logs, one row per request_logs row with has_error = 1,
-- written by ClickHouse itself (materialized view), so it never disagrees with
-- request_logs. id is the request's event_id.
--
--   error_type    = the request's error_type; for an error without one, the stream
--                   interruption cause ("client_disconnect", "upstream_cut") or
--                   "http_<status>"
--   error_stack   = the chain of upstream attempts, one line each (the gateway has no
--                   stack trace; the failover path is what explains an error)
--   context       = a small JSON object: model, original_model, project, interrupted,
--                   attempts (count), failures (each attempt's failure, in order)
--   created_at    = when ClickHouse wrote the row
--
-- model and project are added as columns so errors can be broken down without parsing
-- context.
CREATE TABLE IF NOT EXISTS `gca`.`error_logs_local` ON CLUSTER `gca_cluster`
(
    id            String,
    timestamp     DateTime64(3, 'UTC'),
    error_type    LowCardinality(String),
    error_message String,
    error_stack   String,
    request_id    String,
    client_type   LowCardinality(String),
    client_ip     String,
    endpoint      LowCardinality(String),
    method        LowCardinality(String),
    api_key_hash  LowCardinality(String),
    status_code   UInt16,
    user_agent    String,
    referer       String,
    context       String,
    created_at    DateTime('UTC'),
    model         LowCardinality(String),
    project       LowCardinality(String)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/gca/error_logs_local', '{replica}')
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), error_type, timestamp, id)
TTL toDateTime(timestamp) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS `gca`.`error_logs` ON CLUSTER `gca_cluster` AS `gca`.`error_logs_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `error_logs_local`, sipHash64(id));

CREATE MATERIALIZED VIEW IF NOT EXISTS `gca`.`error_logs_mv_local` ON CLUSTER `gca_cluster`
TO `gca`.`error_logs_local`
AS SELECT
    id,
    timestamp,
    if(toString(error_type) != '', toString(error_type),
       if(toString(interrupted) != '', toString(interrupted), concat('http_', toString(status_code)))) AS error_type,
    error_message,
    arrayStringConcat(
        arrayMap((i, k, p, s, f, l) -> concat('#', toString(i), ' key=', k, ' project=', p,
                                             ' status=', toString(s), ' failure=', f,
                                             ' latency_ms=', toString(l)),
                 arrayEnumerate(attempts.key_hash), attempts.key_hash, attempts.project,
                 attempts.status, attempts.failure, attempts.latency_ms),
        '\n') AS error_stack,
    request_id,
    client_type,
    client_ip,
    endpoint,
    method,
    api_key_hash,
    status_code,
    user_agent,
    referer,
    concat('{"model":', concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(toString(model), '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"'),
           ',"original_model":', concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(toString(original_model), '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"'),
           ',"project":', concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(toString(project), '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"'),
           ',"interrupted":', concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(toString(interrupted), '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"'),
           ',"attempts":', toString(length(attempts.key_hash)),
           ',"failures":[', arrayStringConcat(arrayMap(f -> concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(f, '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"'), attempts.failure), ','),
           ']}') AS context,
    now() AS created_at,
    model,
    project
FROM `gca`.`request_logs_local`
WHERE has_error = 1;

-- migration system_stats
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
CREATE TABLE IF NOT EXISTS `gca`.`system_stats_daily_local` ON CLUSTER `gca_cluster`
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
    updated_at_state          AggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/gca/system_stats_daily_local', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY date
TTL date + INTERVAL 730 DAY;

CREATE TABLE IF NOT EXISTS `gca`.`system_stats_daily` ON CLUSTER `gca_cluster` AS `gca`.`system_stats_daily_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `system_stats_daily_local`, toUInt32(date));

CREATE MATERIALIZED VIEW IF NOT EXISTS `gca`.`system_stats_daily_mv_local` ON CLUSTER `gca_cluster`
TO `gca`.`system_stats_daily_local`
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
FROM `gca`.`request_logs_local`
GROUP BY date;

CREATE VIEW IF NOT EXISTS `gca`.`system_stats` ON CLUSTER `gca_cluster`
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
FROM `gca`.`system_stats_daily`
GROUP BY date;

-- migration api_key_metrics
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
CREATE TABLE IF NOT EXISTS `gca`.`api_key_metrics_state_local` ON CLUSTER `gca_cluster`
(
    key_hash                  String,
    total_requests_state      AggregateFunction(count),
    successful_requests_state AggregateFunction(sum, UInt64),
    response_time_sum_state   AggregateFunction(sum, UInt64),
    min_response_time_state   AggregateFunction(min, UInt32),
    max_response_time_state   AggregateFunction(max, UInt32),
    last_response_time_state  AggregateFunction(argMax, UInt32, Tuple(DateTime64(3, 'UTC'), String, UInt32)),
    last_success_state        AggregateFunction(maxIf, Tuple(DateTime64(3, 'UTC'), String, UInt32), UInt8),
    last_failure_time_state   AggregateFunction(maxIf, DateTime64(3, 'UTC'), UInt8),
    input_tokens_state        AggregateFunction(sum, UInt64),
    output_tokens_state       AggregateFunction(sum, UInt64),
    last_used_state           AggregateFunction(max, DateTime64(3, 'UTC')),
    first_seen_state          AggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/gca/api_key_metrics_state_local', '{replica}')
ORDER BY key_hash;

CREATE TABLE IF NOT EXISTS `gca`.`api_key_metrics_state` ON CLUSTER `gca_cluster` AS `gca`.`api_key_metrics_state_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `api_key_metrics_state_local`, sipHash64(key_hash));

CREATE MATERIALIZED VIEW IF NOT EXISTS `gca`.`api_key_metrics_state_mv_local` ON CLUSTER `gca_cluster`
TO `gca`.`api_key_metrics_state_local`
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
FROM `gca`.`request_logs_local`
ARRAY JOIN attempts AS a, arrayEnumerate(attempts.key_hash) AS n
GROUP BY key_hash;

CREATE TABLE IF NOT EXISTS `gca`.`api_key_failures_local` ON CLUSTER `gca_cluster`
(
    key_hash String,
    ts       DateTime64(3, 'UTC'),
    event_id String,
    attempt  UInt32,
    project  LowCardinality(String),
    model    LowCardinality(String),
    status   UInt16,
    failure  LowCardinality(String)
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/gca/api_key_failures_local', '{replica}')
PARTITION BY toYYYYMMDD(ts)
ORDER BY (key_hash, ts, event_id, attempt)
TTL toDateTime(ts) + INTERVAL 30 DAY;

CREATE TABLE IF NOT EXISTS `gca`.`api_key_failures` ON CLUSTER `gca_cluster` AS `gca`.`api_key_failures_local`
ENGINE = Distributed(`gca_cluster`, `gca`, `api_key_failures_local`, sipHash64(key_hash));

CREATE MATERIALIZED VIEW IF NOT EXISTS `gca`.`api_key_failures_mv_local` ON CLUSTER `gca_cluster`
TO `gca`.`api_key_failures_local`
AS SELECT
    a.key_hash AS key_hash,
    a.ts AS ts,
    id AS event_id,
    n AS attempt,
    a.project AS project,
    model,
    a.status AS status,
    a.failure AS failure
FROM `gca`.`request_logs_local`
ARRAY JOIN attempts AS a, arrayEnumerate(attempts.key_hash) AS n
WHERE NOT (a.failure = '' OR a.failure = 'none');

CREATE VIEW IF NOT EXISTS `gca`.`api_key_metrics` ON CLUSTER `gca_cluster`
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
        FROM `gca`.`api_key_metrics_state`
        GROUP BY key_hash
    ) AS totals
    ANY LEFT JOIN
    (
        -- Failures after the last success. uniqExact, not count: a failure written twice
        -- by racing writers still counts once.
        SELECT
            key_hash,
            toUInt64(uniqExact(event_id, attempt)) AS consecutive_failures
        FROM `gca`.`api_key_failures`
        GLOBAL ALL INNER JOIN
        (
            SELECT key_hash, maxIfMerge(last_success_state) AS last_success
            FROM `gca`.`api_key_metrics_state`
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
    FROM `gca`.`key_state_log`
    WHERE key_hash != ''
    GROUP BY key_hash
) AS states USING key_hash;

