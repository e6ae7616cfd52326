// Package keypool chooses the Gemini API key for each upstream attempt, so that no
// request goes to a project without quota and no two replicas admit the same headroom.
//
// # Quotas and state
//
// Quotas belong to a Google Cloud project and a model (RPM, input TPM per clock minute;
// RPD per Pacific day), so the pool groups keys by project. The processors keep the
// counters, cool-downs, blacklist and health in Valkey (schemas.Keys); the ingress
// writes one thing there: reservations in the pair's pending hash, "<minute>:<tokens>:
// <expires-ms>", which the processor that counts the attempt deletes in the same
// script that increments the counters. A request is thus seen exactly once: pending
// before, counted after.
//
// # Selection: one round trip
//
// The pool keeps a cached view of each (project, model) pair — the minute's counted
// requests and tokens, the day's requests, pending reservations, cool-down, and each
// key's blacklist entry and circuit — refreshed from the replies of its own
// reservations and by Run's background refresh (every RefreshInterval, one DoMulti of
// read-only runs of the same script). Select groups the candidate keys (allowed for
// the model, not excluded, not known disabled) by project, passes over projects the
// view knows to be unusable, ranks the rest by the strategy, and runs the reservation
// script (reserveLua; its KEYS, ARGV and reply are documented there) on the first:
// atomically it checks the project's counters plus pending reservations against the
// limits and the cool-down, picks the first candidate key that is neither blacklisted
// nor circuit-open, and writes the reservation. A refusal comes with the project's
// fresh numbers and why (cooldown, rpd, rpm, tpm, disabled); Select stores them and
// tries the next project. All of a project's keys share the "{project}" hash tag, so
// the script runs on a cluster too. While Valkey is up, replicas can never
// over-admit: every admission is a check-and-reserve in one script.
//
// The script reads the pair's pending requests and tokens from running totals, not
// from the pending hash, which holds every reservation the processors have not counted
// yet. Requests of this instance that wait for the same pair at the same moment share
// one run of the script (batch.go): under load, Valkey does one read of the pair and
// one write of the reservations per round trip instead of one script per request,
// while admission stays the same as one call after the other.
//
// # Strategies
//
//   - most_headroom (default): the project with the largest remaining fraction of its
//     tightest quota, min over RPM, TPM, RPD of (limit − used) / limit, goes first;
//     equal projects in random order (Options.Rand), so load spreads evenly and
//     projects fill level with one another.
//   - round_robin: projects in turn, ordered by id.
//   - weighted: projects drawn with probability proportional to their candidate keys'
//     summed weights, keys within the project by weight.
//
// Within a project, keys rotate; keys that failed recently, or whose latency average
// (an EWMA kept locally per key) is over twice the project's best, go last. A key's
// circuit opens after MaxFails (3) upstream failures since its last success within
// FailWindow (30s) and closes when the oldest of them leaves the window — caddy's
// passive health check. 5xx and timeouts count only there: they never cool down or
// disable anything.
//
// # Outcomes
//
// Release takes the attempt's Outcome. An attempt the upstream did not count (429,
// 5xx, invalid key, timeout) has its reservation deleted at once; a counted one is left
// to the processors. The outcome updates the view immediately: a 429 cools the pair
// down here (CooldownFor, the one function that decides a cool-down's end, which also
// goes into the key-state event), an invalid or forbidden key is disabled here, a 5xx
// counts toward the key's circuit. So this instance stops using them before the event
// has made its way through Kafka and the processors into Valkey.
//
// # When Valkey is down: fail-open within local limits
//
// A reservation call that fails or exceeds Options.Timeout (250ms) marks the pool
// degraded (Degraded, metric gca_ingress_keypool_degraded). Select then admits from
// the view: Valkey's last numbers for the pair, plus this instance's reservation calls
// still awaiting a reply and those that failed (they may have been applied), plus its
// admissions since the outage began, never beyond the limits; such leases have
// Local set and a reservation id but no entry in Valkey yet. The refresh probes Valkey
// every RefreshInterval and ends the degraded period when it answers: it first writes
// the local leases that may still be uncounted into the pending hashes (handover.go),
// so that Valkey never admits their headroom a second time, then deletes the
// reservations that could not be deleted before. During an outage each replica admits up to the limit minus what it
// last saw, so over-admission is bounded by (replicas − 1) × limit per window (minute
// for RPM/TPM, Pacific day for RPD), plus whatever the other replicas reserved between
// this one's last look and the outage. Set Timeout well above Valkey's p99: a timeout
// on a merely slow Valkey counts as an outage.
//
// # Configuration
//
// Keys come from a JSON file (GCA_KEYS_FILE) and the environment (GCA_GEMINI_KEYS,
// "key", "project:key" or "project:tier:key", comma-separated); see Config,
// DefaultLimits and testdata/good.json. A key without a project is its own project.
// Reload swaps the key set atomically; leases keep their keys. Watch reports changes
// of the file.
package keypool
