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
CREATE TABLE IF NOT EXISTS {{local "error_logs"}}{{onCluster}}
(
    id            String,
    timestamp     {{datetime}},
    error_type    {{lcFromView "String"}},
    error_message String,
    error_stack   String,
    request_id    String,
    client_type   {{lc "String"}},
    client_ip     String,
    endpoint      {{lc "String"}},
    method        {{lc "String"}},
    api_key_hash  {{lc "String"}},
    status_code   UInt16,
    user_agent    String,
    referer       String,
    context       String,
    created_at    DateTime('UTC'),
    model         {{lc "String"}},
    project       {{lc "String"}}
)
ENGINE = {{engine "ReplacingMergeTree" "error_logs"}}
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), error_type, timestamp, id)
{{ttl "toDateTime(timestamp)" .RetentionDays}};

{{distributed "error_logs" "sipHash64(id)"}};

CREATE MATERIALIZED VIEW IF NOT EXISTS {{local "error_logs_mv"}}{{onCluster}}
TO {{local "error_logs"}}
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
    concat('{"model":', {{jsonString "toString(model)"}},
           ',"original_model":', {{jsonString "toString(original_model)"}},
           ',"project":', {{jsonString "toString(project)"}},
           ',"interrupted":', {{jsonString "toString(interrupted)"}},
           ',"attempts":', toString(length(attempts.key_hash)),
           ',"failures":[', arrayStringConcat(arrayMap(f -> {{jsonString "f"}}, attempts.failure), ','),
           ']}') AS context,
    now() AS created_at,
    model,
    project
FROM {{local "request_logs"}}
WHERE has_error = 1;
