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
CREATE TABLE IF NOT EXISTS {{local "request_logs"}}{{onCluster}}
(
    id                     String,
    timestamp              {{datetime}},
    client_type            {{lc "String"}},
    client_ip              String,
    user_agent             String,
    api_key_hash           {{lc "String"}},
    model                  {{lc "String"}},
    original_model         {{lc "String"}},
    endpoint               {{lc "String"}},
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

    project                {{lc "String"}},
    token_hash             String,
    request_id             String,
    instance               {{lc "String"}},
    method                 {{lc "String"}},
    referer                String,
    error_type             {{lc "String"}},
    ttfb_ms                UInt32,
    prompt_tokens          UInt64,
    candidates_tokens      UInt64,
    thoughts_tokens        UInt64,
    cached_tokens          UInt64,
    tool_use_prompt_tokens UInt64,
    est_input_tokens       UInt64,
    interrupted            {{lc "String"}},
    cache_hit              UInt8,

    -- One element per upstream call, in order; the last one is the key that answered.
    -- failure is '' for a success, else gemini.Failure's name, "timeout" or "network".
    attempts Nested
    (
        key_hash       String,
        project        String,
        ts             {{datetime}},
        status         UInt16,
        failure        String,
        latency_ms     UInt32,
        input_tokens   UInt64,
        counted        UInt8,
        retry_after_ms UInt32
    ){{if .Modern}},

    INDEX request_id_bloom request_id TYPE bloom_filter(0.01) GRANULARITY 4{{end}}
)
ENGINE = {{engine "ReplacingMergeTree" "request_logs"}}
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), api_key_hash, model, timestamp, id)
{{ttl "toDateTime(timestamp)" .RetentionDays}};

{{distributed "request_logs" "sipHash64(id)"}};
