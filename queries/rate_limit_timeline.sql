-- Upstream 429s per time bucket, project and model: when and where quota ran out.
--
-- One count per upstream attempt answered 429, at the attempt's time and for the
-- attempt's project (quotas are per project and model), whether or not the gateway then
-- failed over to another key. The attempt's failure says which quota Gemini reported:
--
--   minute_quota  a per-minute quota (RPM or input TPM)
--   day_quota     the per-day quota (RPD, until Pacific midnight)
--   other_quota   a 429 without a recognizable QuotaFailure (quota_unknown)
--   keys          distinct keys of the project that got a 429
--   max_retry_after_ms  the longest retryDelay Gemini asked for (0 when none)
--
-- Buckets are bucket_minutes long, aligned to the Unix epoch (so 60 gives UTC hours).
-- Buckets without a 429 are absent: 18.16 has no ORDER BY ... WITH FILL. FINAL reads
-- each request once; requests that arrived up to an hour before the window are read
-- for their later attempts.
--
-- @param from           DateTime         now-24h start of the window (inclusive, UTC)
-- @param to             DateTime         now     end of the window (exclusive, UTC)
-- @param bucket_minutes UInt(1..10080)   60      bucket length in minutes
-- @param project        String           ''      only this project ('' = every project)
-- @param model          String           ''      only this model ('' = every model)
-- @example --param from=now-6h --param bucket_minutes=5 --param model=gemini-2.5-pro
SELECT
    toDateTime(intDiv(toUnixTimestamp(a.ts), {bucket_minutes:UInt64} * 60) * ({bucket_minutes:UInt64} * 60), 'UTC') AS bucket_start,
    toString(a.project) AS project,
    toString(model) AS model,
    count() AS rate_limited,
    countIf(a.failure = 'minute_quota') AS minute_quota,
    countIf(a.failure = 'day_quota') AS day_quota,
    countIf(a.failure NOT IN ('minute_quota', 'day_quota')) AS other_quota,
    uniqExact(a.key_hash) AS keys,
    max(a.retry_after_ms) AS max_retry_after_ms
FROM request_logs FINAL
ARRAY JOIN attempts AS a
WHERE timestamp >= {from:DateTime('UTC')} - 3600 AND timestamp < {to:DateTime('UTC')}
  AND a.status = 429
  AND a.ts >= {from:DateTime('UTC')} AND a.ts < {to:DateTime('UTC')}
  AND ({project:String} = '' OR a.project = {project:String})
  AND ({model:String} = '' OR model = {model:String})
GROUP BY bucket_start, project, model
ORDER BY bucket_start, project, model
