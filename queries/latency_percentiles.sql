-- Latency percentiles (p50, p90, p99) and time to first byte per model and client type.
--
-- Over the requests that arrived in the window, as the client saw them (response_time:
-- arrival to last byte, failovers included; cache hits included). Failed requests are
-- left out unless include_errors = 1: a 401 answered in a millisecond is not latency.
--
--   p50_ms, p90_ms, p99_ms      quantileExact of response_time: the value at position
--                               floor(level * n) of the sorted latencies (exact, the
--                               same on 18.16 and current servers)
--   avg_ms                      sum / count
--   ttfb_samples                requests with a first byte measured (streams, ttfb_ms > 0)
--   ttfb_p50_ms, _p90_ms, _p99_ms  the same percentiles of ttfb_ms over those (0 when none)
--
-- One quantileExact per level rather than quantilesExact(...)[i]: current servers fuse
-- them into one pass, and 18.16 runs them as written. FINAL reads each request once.
--
-- @param from           DateTime     now-24h start of the window (inclusive, UTC)
-- @param to             DateTime     now     end of the window (exclusive, UTC)
-- @param include_errors UInt(0..1)   0       1 to include failed requests
-- @example --param from=now-1h --param include_errors=1
SELECT
    toString(model) AS model,
    toString(client_type) AS client_type,
    count() AS requests,
    quantileExact(0.5)(response_time) AS p50_ms,
    quantileExact(0.9)(response_time) AS p90_ms,
    quantileExact(0.99)(response_time) AS p99_ms,
    max(response_time) AS max_ms,
    sum(response_time) / count() AS avg_ms,
    countIf(ttfb_ms > 0) AS ttfb_samples,
    quantileExactIf(0.5)(ttfb_ms, ttfb_ms > 0) AS ttfb_p50_ms,
    quantileExactIf(0.9)(ttfb_ms, ttfb_ms > 0) AS ttfb_p90_ms,
    quantileExactIf(0.99)(ttfb_ms, ttfb_ms > 0) AS ttfb_p99_ms
FROM request_logs FINAL
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
  AND (has_error = 0 OR {include_errors:UInt64} = 1)
GROUP BY model, client_type
ORDER BY model, client_type
