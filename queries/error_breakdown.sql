-- Errors by type, HTTP status and model in a time window, most frequent first.
--
-- From error_logs (one row per failed request: status outside 2xx or a stream cut
-- short, written by a materialized view from request_logs). error_type is the request's
-- error type, or the interruption cause (client_disconnect, upstream_cut), or
-- http_<status>. FINAL reads each request once even before merges collapsed a
-- duplicate.
--
--   errors        failed requests
--   share         errors / all errors in the window (0..1)
--   keys          distinct keys that answered them ('' counts for requests that never
--                 reached a key: rejected tokens, cache hits)
--   first_seen, last_seen
--   last_message  the error_message of the latest one
--
-- @param from  DateTime now-24h start of the window (inclusive, UTC)
-- @param to    DateTime now     end of the window (exclusive, UTC)
-- @param model String   ''      only this model ('' = every model)
-- @example --param from=now-1h --param model=gemini-2.5-flash
SELECT
    toString(error_type) AS error_type,
    status_code,
    toString(model) AS model,
    count() AS errors,
    errors / (
        SELECT count() FROM error_logs FINAL
        WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
          AND ({model:String} = '' OR model = {model:String})
    ) AS share,
    uniqExact(api_key_hash) AS keys,
    min(timestamp) AS first_seen,
    max(timestamp) AS last_seen,
    argMax(error_message, (timestamp, id)) AS last_message
FROM error_logs FINAL
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
  AND ({model:String} = '' OR model = {model:String})
GROUP BY error_type, status_code, model
ORDER BY errors DESC, error_type, status_code, model
