-- Per-key metrics, one row per Gemini key the gateway has called: the seed's api_key_metrics.
--
-- Read from the api_key_metrics view (schemas/chddl/migrations/0006_api_key_metrics.sql
-- defines each column): counted per upstream attempt, so a key that failed and was
-- failed over counts its failure; is_healthy is 0 after 3 consecutive quota or
-- credential failures, or while the key's latest disable/enable event is a disable.
-- success_rate = successful_requests / total_requests. Lifetime totals, not a window.
--
-- @param key_hash String '' only this key ('' = every key)
-- @example --param key_hash=3f2a9c0d1e4b5a69
SELECT
    key_hash,
    total_requests,
    successful_requests,
    failed_requests,
    successful_requests / total_requests AS success_rate,
    average_response_time,
    last_response_time,
    min_response_time,
    max_response_time,
    is_healthy,
    last_health_check,
    consecutive_failures,
    last_failure_time,
    total_tokens,
    total_input_tokens,
    total_output_tokens,
    last_used,
    first_seen,
    created_at,
    updated_at
FROM api_key_metrics
WHERE {key_hash:String} = '' OR key_hash = {key_hash:String}
ORDER BY key_hash
