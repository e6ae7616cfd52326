-- Streams cut short per model and client type: by the client or by the upstream.
--
-- Over the streaming requests (is_stream = 1) that arrived in the window. A stream
-- either ends normally, or is cut: interrupted = 'client_disconnect' (the client went
-- away) or 'upstream_cut' (Gemini closed it early). A cut stream still produced one
-- event with what was seen, and counts as failed in system_stats.
--
--   streams             streaming requests
--   client_disconnects, upstream_cuts
--   interruption_rate   (client_disconnects + upstream_cuts) / streams
--   bytes_before_cut    response bytes sent to the client before the cuts
--   p50_ms_to_cut       median time from arrival to the cut (0 when none)
--
-- FINAL reads each request once.
--
-- @param from DateTime now-24h start of the window (inclusive, UTC)
-- @param to   DateTime now     end of the window (exclusive, UTC)
-- @example --param from=now-7d
SELECT
    toString(model) AS model,
    toString(client_type) AS client_type,
    count() AS streams,
    countIf(interrupted = 'client_disconnect') AS client_disconnects,
    countIf(interrupted = 'upstream_cut') AS upstream_cuts,
    (client_disconnects + upstream_cuts) / streams AS interruption_rate,
    sumIf(response_size, interrupted != '') AS bytes_before_cut,
    quantileExactIf(0.5)(response_time, interrupted != '') AS p50_ms_to_cut
FROM request_logs FINAL
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
  AND is_stream = 1
GROUP BY model, client_type
ORDER BY model, client_type
