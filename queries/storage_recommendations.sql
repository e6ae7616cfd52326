-- What to clean up or compact: the seed's StorageOptimizer, for ClickHouse.
--
-- One row per partition that needs an action, from system.parts:
--
--   drop_partition      every row of the partition is older than its table's retention:
--                       the partition ends (next UTC day or month) at least retention
--                       days before `now`. Tables and retention as the processors keep
--                       them: request_logs, error_logs, api_key_failures (daily) and
--                       key_state_log (monthly) by retention_days; system_stats_daily
--                       (monthly) by stats_retention_days; audit_log is never dropped; 0
--                       keeps a table forever. Current servers drop expired rows by TTL
--                       themselves, in merges; 18.16 has no TTL and relies on this.
--   optimize_partition  the partition holds more than max_parts active parts (merges fall
--                       behind; each part costs every query and insert): merge it into
--                       one with OPTIMIZE ... FINAL, which also collapses duplicates.
--
-- A partition due for dropping is not also listed for optimizing. `statement` is the SQL
-- that carries the action out; `processors storage optimize --execute` and
-- POST /admin/storage/optimize execute these rows (each logged as an audit event),
-- building the statement themselves from table_name and partition_id.
--
-- @param now                  DateTime                now  the time to judge expiry at
-- @param retention_days       UInt(0..36500)          30   days request_logs, error_logs, api_key_failures, key_state_log keep (0 = forever)
-- @param stats_retention_days UInt(0..36500)          730  days system_stats_daily keeps (0 = forever)
-- @param max_parts            UInt(1..100000)         50   active parts a partition may hold before it is worth optimizing
-- @param database             String                  ''   database to check ('' = the connection's database)
-- @example --param retention_days=14 --param max_parts=20
SELECT
    multiIf(expired, 'drop_partition', 'optimize_partition') AS action,
    multiIf(expired, 'medium', 'high') AS priority,
    database,
    table AS table_name,
    partition_id,
    parts AS active_parts,
    partition_rows AS rows,
    partition_bytes AS bytes_on_disk,
    multiIf(expired,
        concat('every row is older than the ', toString(days), '-day retention'),
        concat(toString(parts), ' active parts (more than ', toString({max_parts:UInt64}), ')')) AS description,
    multiIf(expired,
        'frees its disk space; queries scan less',
        'faster queries and inserts; duplicates collapsed') AS expected_impact,
    multiIf(expired,
        concat('ALTER TABLE `', database, '`.`', table, '` DROP PARTITION ID ''', partition_id, ''''),
        concat('OPTIMIZE TABLE `', database, '`.`', table, '` PARTITION ID ''', partition_id, ''' FINAL')) AS statement
FROM
(
    SELECT
        database,
        table,
        partition_id,
        count() AS parts,
        sum(rows) AS partition_rows,
        sum(bytes_on_disk) AS partition_bytes,
        replaceRegexpOne(table, '_local$', '') AS base_table,
        if(base_table = 'system_stats_daily', {stats_retention_days:UInt64}, {retention_days:UInt64}) AS days,
        match(partition_id, '^[0-9]{6}([0-9]{2})?$') AS dated,
        toDateOrZero(concat(substring(partition_id, 1, 4), '-', substring(partition_id, 5, 2), '-',
                            if(length(partition_id) = 8, substring(partition_id, 7, 2), '01'))) AS partition_start,
        if(length(partition_id) = 8, addDays(partition_start, 1), addMonths(partition_start, 1)) AS partition_end,
        dated
            AND base_table IN ('request_logs', 'error_logs', 'api_key_failures', 'key_state_log', 'system_stats_daily')
            AND days > 0
            AND toDateTime(addDays(partition_end, days), 'UTC') <= {now:DateTime('UTC')} AS expired
    FROM system.parts
    WHERE database = if({database:String} = '', currentDatabase(), {database:String})
      AND active
      AND replaceRegexpOne(table, '_local$', '') IN ('request_logs', 'error_logs', 'api_key_failures', 'key_state_log',
                                                     'system_stats_daily', 'audit_log', 'api_key_metrics_state')
    GROUP BY database, table, partition_id
)
WHERE expired OR parts > {max_parts:UInt64}
ORDER BY priority, table_name, partition_id
