-- Keys ranked from healthiest to least healthy, from api_key_metrics.
--
-- The order, each criterion breaking the previous one's ties:
--   1. healthy keys first (is_healthy = 1)
--   2. higher success_rate (successful / total attempts)
--   3. fewer consecutive_failures (quota or credential failures since the last success)
--   4. lower average_response_time
--   5. key_hash, so the ranking is total
-- rank is the position, from 1. Keys with fewer than min_requests attempts are left out
-- (a key tried twice says little).
--
-- ClickHouse 18.16 has no window functions (row_number() OVER ...), so the rank is the
-- position in an array sorted by the criteria; it gives the same ranks on current
-- servers.
--
-- @param min_requests UInt             1   rank only keys with at least this many attempts
-- @param limit        UInt(1..100000)  100 at most this many keys
-- @example --param min_requests=20 --param limit=10
SELECT
    rank,
    k.1 AS key_hash,
    k.2 AS is_healthy,
    k.3 AS success_rate,
    k.4 AS consecutive_failures,
    k.5 AS average_response_time,
    k.6 AS total_requests,
    k.7 AS failed_requests,
    k.8 AS last_failure_time,
    k.9 AS last_used
FROM
(
    SELECT arraySort(x -> (1 - x.2, -x.3, x.4, x.5, x.1), groupArray(tuple(
        key_hash, is_healthy, successful_requests / total_requests, consecutive_failures,
        average_response_time, total_requests, failed_requests, last_failure_time, last_used))) AS ranked
    FROM api_key_metrics
    WHERE total_requests >= {min_requests:UInt64}
)
ARRAY JOIN ranked AS k, arrayEnumerate(ranked) AS rank
ORDER BY rank
LIMIT {limit:UInt64}
