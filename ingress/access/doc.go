// Package access decides who may use the gateway: it extracts the client's credential,
// authenticates it in the deployment's mode, applies per-token limits, and guards the
// admin API.
//
// # Modes (one per deployment)
//
//   - gateway: the Gemini keys live in the server-side pool (package keypool); clients
//     hold tokens the operator issued with NewToken ("gca_" + 32 base62 characters,
//     about 190 bits). The tokens file stores only each token's SHA-256, with its name,
//     optional allowed models, optional RPM and daily request limits and a disabled flag.
//   - passthrough: the seed's mode. The client sends its own Gemini key, or several
//     separated by commas; the pool of that request is those keys (Principal.Keys),
//     each its own project unless the keys config lists it, quotas still tracked by the
//     key's hash. There are no tokens and no per-token limits: the keys' quotas are the
//     limit.
//
// # Credentials
//
// Accepted in Authorization: Bearer, x-api-key, x-goog-api-key and ?key= (see
// Extract). Exactly one credential per request: the same value in several places is
// fine, different values are refused. An Authorization header with another scheme
// (Basic, Digest...) is refused with a clear error, never ignored.
//
// # Guessing
//
// Tokens are compared by SHA-256, with a constant-time comparison of the sums (see
// tokenStore for why the map lookup leaks nothing useful). A source (client IP; IPv6
// per /64) that fails to authenticate FailureLimit times (default 10) within
// FailureWindow (default one minute) gets 429 with Retry-After for every request
// until the window ends, whether or not its next credential is valid. The count is per
// instance.
//
// # Per-token limits
//
// Token.RPM and Token.RPD are enforced across all replicas with a Valkey counter per
// token and window (see limits.go for the layout); the day is the Pacific day, like
// Gemini's. When Valkey is unreachable they are enforced per instance, continuing from
// the last numbers Valkey gave, so over-admission during an outage is at most
// (replicas − 1) × limit per window.
//
// # Usage
//
//	p, err := auth.Authenticate(c.Request, c.ClientIP())  // *Error: Status, Message, RetryAt
//	err = auth.Admit(ctx, p, model)                      // allowed models, RPM, RPD
//	lease, err := pool.Select(ctx, keypool.SelectRequest{Model: model, Subset: p.Keys})
//	err = auth.CheckAdmin(c.Request, c.ClientIP())        // admin routes
package access
