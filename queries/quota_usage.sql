-- Quota usage per key and model in one quota window: the seed's QuotaManager.getQuotaUsage.
--
-- Counted as the processors count the Valkey quota counters the ingress selects keys
-- with: one request per counted upstream attempt (attempts.counted = 1: the upstream
-- accepted the call, so it consumed the project's quota; a 429 or an invalid key did
-- not), in the window of the attempt's own time (attempts.ts), for the request's model.
--
--   minute  the clock minute holding `at` (RPM and input TPM are per clock minute)
--   day     the Pacific day holding `at`: midnight to midnight America/Los_Angeles,
--           23 or 25 hours across a DST change (Gemini's RPD resets then)
--
--   request_count  counted attempts (RPM or RPD)
--   input_tokens   their attempts.input_tokens (TPM: promptTokenCount when the upstream
--                  reported it, the gateway's estimate otherwise)
--   output_tokens  the request's output tokens, for the attempt that answered it
--   token_count    input_tokens + output_tokens (the seed's token_count)
--
-- Quotas belong to a project: the sum of a project's rows for a model is the value of
-- its Valkey counter for that window. The seed counted has_error = 0 requests in a
-- rolling window instead; a failed-over request counts once per accepted attempt here,
-- as Google counts it. FINAL reads each request once even before merges collapsed a
-- duplicate. An attempt is sent within the upstream deadline of its request's arrival,
-- so only requests that arrived up to an hour before the window are read.
--
-- @param quota_window String(minute|day) minute  minute (clock minute: RPM, TPM) or day (Pacific day: RPD)
-- @param at           DateTime           now     an instant inside the window to report
-- @param project      String             ''      only this project ('' = every project)
-- @param key_hash     String             ''      only this key ('' = every key)
-- @param model        String             ''      only this model ('' = every model)
-- @example --param quota_window=day --param model=gemini-2.5-pro
WITH
    {at:DateTime('UTC')} AS at_,
    toUnixTimestamp(toDateTime(toDate(at_, 'America/Los_Angeles'), 'America/Los_Angeles')) AS day_start,
    toUnixTimestamp(toDateTime(toDate(at_, 'America/Los_Angeles') + 1, 'America/Los_Angeles')) AS day_end,
    toUnixTimestamp(toStartOfMinute(at_)) AS minute_start,
    {quota_window:String} = 'minute' AS per_minute,
    toDateTime(if(per_minute, minute_start, day_start), 'UTC') AS window_start,
    toDateTime(if(per_minute, minute_start + 60, day_end), 'UTC') AS window_end
SELECT
    toString(a.project) AS project,
    toString(a.key_hash) AS key_hash,
    toString(model) AS model,
    {quota_window:String} AS quota_window,
    window_start,
    window_end,
    count() AS request_count,
    sum(a.input_tokens) AS input_tokens,
    sum(if(n = length(attempts.key_hash), output_tokens, toUInt64(0))) AS output_tokens,
    input_tokens + output_tokens AS token_count
FROM request_logs FINAL
ARRAY JOIN attempts AS a, arrayEnumerate(attempts.key_hash) AS n
WHERE timestamp >= window_start - 3600 AND timestamp < window_end
  AND a.counted = 1
  AND a.ts >= window_start AND a.ts < window_end
  AND ({project:String} = '' OR a.project = {project:String})
  AND ({key_hash:String} = '' OR a.key_hash = {key_hash:String})
  AND ({model:String} = '' OR model = {model:String})
GROUP BY project, key_hash, model
ORDER BY project, key_hash, model
