-- Rows, bytes and parts per table: the seed's StoragePerformanceMonitor, for ClickHouse.
--
-- Every table of the database (default: the connection's), with its engine, from
-- system.tables, and what its active data parts hold, from system.parts. Views hold no
-- data and show zeros: system_stats and api_key_metrics are computed from
-- system_stats_daily and api_key_metrics_state.
--
--   rows                  rows in active parts (a ReplacingMergeTree still holding a
--                         duplicate counts it until a merge removes it)
--   bytes_on_disk, compressed_bytes, uncompressed_bytes, compression_ratio
--   active_parts          data parts queries read; many small parts slow queries and
--                         inserts (ClickHouse delays inserts at 150 per partition)
--   partitions            distinct partitions (days or months, see the DDL)
--   max_parts_per_partition
--   oldest_partition, newest_partition  partition ids (YYYYMMDD or YYYYMM)
--
-- The seed's cache metrics live in the ingress (GET /admin/caches), not in ClickHouse.
--
-- @param database String '' database to report ('' = the connection's database)
-- @example --param database=gca
SELECT
    name AS table_name,
    engine,
    rows,
    bytes_on_disk,
    compressed_bytes,
    uncompressed_bytes,
    if(compressed_bytes = 0, 0, uncompressed_bytes / compressed_bytes) AS compression_ratio,
    active_parts,
    partitions,
    max_parts_per_partition,
    oldest_partition,
    newest_partition
FROM
(
    SELECT name, engine
    FROM system.tables
    WHERE database = if({database:String} = '', currentDatabase(), {database:String})
) AS t
ALL LEFT JOIN
(
    SELECT
        table AS name,
        sum(partition_rows) AS rows,
        sum(partition_bytes) AS bytes_on_disk,
        sum(partition_compressed) AS compressed_bytes,
        sum(partition_uncompressed) AS uncompressed_bytes,
        sum(parts) AS active_parts,
        count() AS partitions,
        max(parts) AS max_parts_per_partition,
        min(partition_id) AS oldest_partition,
        max(partition_id) AS newest_partition
    FROM
    (
        SELECT
            table,
            partition_id,
            count() AS parts,
            sum(rows) AS partition_rows,
            sum(bytes_on_disk) AS partition_bytes,
            sum(data_compressed_bytes) AS partition_compressed,
            sum(data_uncompressed_bytes) AS partition_uncompressed
        FROM system.parts
        WHERE database = if({database:String} = '', currentDatabase(), {database:String}) AND active
        GROUP BY table, partition_id
    )
    GROUP BY table
) AS p USING name
ORDER BY table_name
