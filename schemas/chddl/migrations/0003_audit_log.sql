-- audit_log: one row per schemas.AuditEvent (operator actions that are not key state),
-- id = event_id. params is the event's map as parallel arrays sorted by key (18.16 has no
-- Map type). Kept without TTL: the audit trail outlives the request logs.
CREATE TABLE IF NOT EXISTS {{local "audit_log"}}{{onCluster}}
(
    id        String,
    timestamp {{datetime}},
    instance  {{lc "String"}},
    actor     String,
    action    {{lc "String"}},
    target    String,
    params Nested
    (
        key   String,
        value String
    ),
    result    String
)
ENGINE = {{engine "ReplacingMergeTree" "audit_log"}}
PARTITION BY toYYYYMM(timestamp)
ORDER BY (timestamp, id);

{{distributed "audit_log" "sipHash64(id)"}};
