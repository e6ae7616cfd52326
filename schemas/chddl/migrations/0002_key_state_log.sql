-- key_state_log: one row per schemas.KeyStateEvent (cool-downs, disabled and enabled keys,
-- keys added and removed), id = event_id. until is the cool-down's absolute end (epoch 0
-- when the event has none). Low volume: monthly partitions.
CREATE TABLE IF NOT EXISTS {{local "key_state_log"}}{{onCluster}}
(
    id             String,
    timestamp      {{datetime}},
    instance       {{lc "String"}},
    kind           {{lc "String"}},
    key_hash       String,
    project        {{lc "String"}},
    model          {{lc "String"}},
    reason         {{lc "String"}},
    source         {{lc "String"}},
    quota_id       {{lc "String"}},
    rpm_exceeded   UInt8,
    tpm_exceeded   UInt8,
    rpd_exceeded   UInt8,
    until          {{datetime}},
    retry_delay_ms UInt32,
    request_id     String,
    status         UInt16,
    message        String
)
ENGINE = {{engine "ReplacingMergeTree" "key_state_log"}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project, timestamp, id)
{{ttl "toDateTime(timestamp)" .RetentionDays}};

{{distributed "key_state_log" "sipHash64(project)"}};
