-- Token usage per UTC day, model and client type.
--
-- From request_logs (FINAL: each request once), the usage the upstream reported for the
-- request (the last chunk that carried usage for a stream; never a sum of chunks):
--
--   input_tokens     prompt + tool-use prompt (cached tokens included)
--   output_tokens    candidates + thoughts
--   total_tokens     the upstream's total, or input + output when it gave none
--   cached_tokens    the part of the prompt served from Gemini's context cache
--   thoughts_tokens  the part of the output spent thinking
--   est_input_tokens the gateway's own estimate before sending (to check it)
--
-- A request that failed before the upstream answered has no usage and counts 0.
--
-- @param from  DateTime now-7d start of the window (inclusive, UTC)
-- @param to    DateTime now    end of the window (exclusive, UTC)
-- @param model String   ''     only this model ('' = every model)
-- @example --param from=now-30d --param model=gemini-2.5-pro
SELECT
    toDate(timestamp) AS day,
    toString(model) AS model,
    toString(client_type) AS client_type,
    count() AS requests,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(total_tokens) AS total_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(thoughts_tokens) AS thoughts_tokens,
    sum(est_input_tokens) AS est_input_tokens
FROM request_logs FINAL
WHERE timestamp >= {from:DateTime('UTC')} AND timestamp < {to:DateTime('UTC')}
  AND ({model:String} = '' OR model = {model:String})
GROUP BY day, model, client_type
ORDER BY day, model, client_type
