package schemas

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// Valkey key layout. The processors write every key below; the ingress only reads them
// (and an operator's admin action goes through an event, never a direct write).
//
// Every key of a project carries the project in a hash tag, "{project}", so that on a
// Valkey cluster all of a project's state lives in one slot and one Lua script can
// update it atomically. The prefix (default "gca:") separates live state from state a
// replay is rebuilding.
//
//	<prefix>{<project>}:rpm:<model>:<unix-minute>   STRING int  requests counted in that minute
//	<prefix>{<project>}:tpm:<model>:<unix-minute>   STRING int  input tokens counted in that minute
//	<prefix>{<project>}:rpd:<model>:<YYYYMMDD>      STRING int  requests counted that Pacific day
//	<prefix>{<project>}:cooldown:<model>            STRING JSON BlacklistEntry, expires at expiresAt
//	<prefix>{<project>}:blacklist:<keyhash>         STRING JSON BlacklistEntry of a disabled key, no TTL
//	<prefix>{<project>}:health:<keyhash>            HASH   ok_ms, fail_ms, fail_kind, lat_n, lat_sum_ms
//	<prefix>{<project>}:fails:<keyhash>             ZSET   failures since the last success (score ts_ms)
//	<prefix>{<project>}:applied:<event-id>          STRING "1", marks an event applied to this project
//	<prefix>{<project>}:pending:<model>             HASH   reservation id -> "<unix-minute>:<tokens>:<expires-ms>:<YYYYMMDD>"
//	<prefix>{<project>}:pending:<model>:m:<minute>  HASH   r, t: the minute's pending requests and tokens
//	<prefix>{<project>}:pending:<model>:d:<day>     STRING the Pacific day's pending requests
//
// The pending hash is the one thing the ingress writes: when it picks a key it reserves
// quota there, atomically with the check against the counters (a Lua script), so
// replicas never admit the same headroom twice. The processor that counts the attempt
// deletes its reservation in the same script that increments the counters, so a request
// is always seen exactly once: pending before, counted after. A reservation whose event
// never arrives (the ingress crashed, or Kafka is down) stops counting at its expiry, the
// end of its minute plus MinuteCounterGrace.
//
// The two aggregates keep the running totals of the pending entries per minute and per
// Pacific day, so a reservation reads two small keys instead of parsing the whole hash
// (which holds every request in flight or not yet counted). Reserving increments them;
// settling a reservation (SettleReservationLua) deletes the entry and decrements them.
// They expire with their window; the day total of a reservation that is never settled
// stays until the day ends, which errs on the side of admitting less.
//
// Expiry is absolute (PEXPIREAT) and computed from event time only, so replaying the
// same events at another moment yields the same keys with the same expiry; keys whose
// window already ended are not written at all.
type Keys struct {
	Prefix string
}

// DefaultPrefix is the prefix of live state.
const DefaultPrefix = "gca:"

// ProjectPattern is what a project id may look like: it becomes part of Valkey keys and
// a hash tag, so braces, colons and spaces are out.
var ProjectPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func (k Keys) tag(project string) string { return k.Prefix + "{" + project + "}:" }

// MinuteRequests is the RPM counter of (project, model) for the Unix minute.
func (k Keys) MinuteRequests(project, model string, minute int64) string {
	return k.tag(project) + "rpm:" + model + ":" + strconv.FormatInt(minute, 10)
}

// MinuteTokens is the input-TPM counter of (project, model) for the Unix minute.
func (k Keys) MinuteTokens(project, model string, minute int64) string {
	return k.tag(project) + "tpm:" + model + ":" + strconv.FormatInt(minute, 10)
}

// DayRequests is the RPD counter of (project, model) for the Pacific day (YYYYMMDD).
func (k Keys) DayRequests(project, model, day string) string {
	return k.tag(project) + "rpd:" + model + ":" + day
}

// Cooldown holds the cool-down entry of (project, model).
func (k Keys) Cooldown(project, model string) string {
	return k.tag(project) + "cooldown:" + model
}

// Blacklist holds the entry of a disabled key.
func (k Keys) Blacklist(project, keyHash string) string {
	return k.tag(project) + "blacklist:" + keyHash
}

// Health is the key's health hash.
func (k Keys) Health(project, keyHash string) string {
	return k.tag(project) + "health:" + keyHash
}

// Fails is the set of the key's failures since its last success.
func (k Keys) Fails(project, keyHash string) string {
	return k.tag(project) + "fails:" + keyHash
}

// Pending is the reservation hash of (project, model).
func (k Keys) Pending(project, model string) string {
	return k.tag(project) + "pending:" + model
}

// PendingMinute is the running total of (project, model)'s reservations of a minute.
func (k Keys) PendingMinute(project, model string, minute int64) string {
	return k.Pending(project, model) + ":m:" + strconv.FormatInt(minute, 10)
}

// PendingDay is the running total of (project, model)'s reservations of a Pacific day.
func (k Keys) PendingDay(project, model, day string) string {
	return k.Pending(project, model) + ":d:" + day
}

// SettleReservationLua defines settle_many(hash, ids) and settle(hash, id): they delete
// the reservations from the pending hash and take them out of the minute and day totals
// (which are built from the hash key's name), those that are still there. Settling twice
// changes nothing. A total that has expired is not recreated. Both the processors (when
// they count attempts) and the ingress (when an attempt consumed no quota) settle with
// it, inside their own scripts. settle_many reads and deletes the entries with one
// command each and updates each total once, whatever the number of reservations.
const SettleReservationLua = `
local function settle_many(hash, ids)
  local n = 0
  for c = 1, #ids, 1000 do
    local part = {unpack(ids, c, math.min(c + 999, #ids))}
    local vs = redis.call('HMGET', hash, unpack(part))
    local gone, seen, mins, days = {}, {}, {}, {}
    for j = 1, #part do
      local v = vs[j]
      if v and not seen[part[j]] then
        seen[part[j]] = true
        gone[#gone + 1] = part[j]
        local m, t, _, d = string.match(v, '^(%d+):(%d+):(%d+):(%d+)$')
        if m then
          local e = mins[m]
          if not e then e = {0, 0}; mins[m] = e end
          e[1], e[2] = e[1] + 1, e[2] + tonumber(t)
          days[d] = (days[d] or 0) + 1
        end
      end
    end
    if #gone > 0 then redis.call('HDEL', hash, unpack(gone)) end
    for m, e in pairs(mins) do
      local mk = hash .. ':m:' .. m
      if redis.call('EXISTS', mk) == 1 then
        redis.call('HINCRBY', mk, 'r', -e[1])
        redis.call('HINCRBY', mk, 't', -e[2])
      end
    end
    for d, c in pairs(days) do
      local dk = hash .. ':d:' .. d
      if redis.call('EXISTS', dk) == 1 then redis.call('DECRBY', dk, c) end
    end
    n = n + #gone
  end
  return n
end
local function settle(hash, id) return settle_many(hash, {id}) end
`

// Applied marks an event as applied to the project's counters.
func (k Keys) Applied(project, eventID string) string {
	return k.tag(project) + "applied:" + eventID
}

// ProjectGlob matches every key of one project (for SCAN).
func (k Keys) ProjectGlob(project string) string { return k.tag(project) + "*" }

// AllGlob matches every key under the prefix (for SCAN).
func (k Keys) AllGlob() string { return k.Prefix + "*" }

// Health hash fields.
const (
	HealthOKMs     = "ok_ms"
	HealthFailMs   = "fail_ms"
	HealthFailKind = "fail_kind"
	HealthLatN     = "lat_n"
	HealthLatSumMs = "lat_sum_ms"
)

// Expiry of derived state, as absolute times computed from the event's own time.
const (
	// MinuteCounterGrace keeps a minute's counters one more minute after it ends, so
	// the consistency check and a slow reader still see the last complete minute.
	MinuteCounterGrace = time.Minute
	// DayCounterGrace keeps a day's counter an hour past Pacific midnight.
	DayCounterGrace = time.Hour
	// HealthTTL: health of a key unused for this long is forgotten.
	HealthTTL = 24 * time.Hour
)

// MinuteCounterExpiry is when the minute counters of t's minute expire.
func MinuteCounterExpiry(t time.Time) time.Time { return MinuteEnd(t).Add(MinuteCounterGrace) }

// DayCounterExpiry is when the day counter of t's Pacific day expires.
func DayCounterExpiry(t time.Time) time.Time { return NextPacificMidnight(t).Add(DayCounterGrace) }

// BlacklistEntry is the seed's blacklist entry, kept readable as JSON in the cooldown and
// blacklist keys: {keyHash, reason, timestamp, expiresAt, model, quotaExceeded{rpm,tpm,rpd}}.
// A disabled key's entry has expiresAt 0: it holds until enabled.
type BlacklistEntry struct {
	KeyHash       string        `json:"keyHash,omitempty"`
	Project       string        `json:"project"`
	Reason        string        `json:"reason"`
	Timestamp     int64         `json:"timestamp"`
	ExpiresAt     int64         `json:"expiresAt"`
	Model         string        `json:"model,omitempty"`
	QuotaExceeded QuotaExceeded `json:"quotaExceeded"`
	QuotaID       string        `json:"quotaId,omitempty"`
	Source        string        `json:"source,omitempty"`
	EventID       string        `json:"eventId"`
}

// ValidateProject reports whether a project id can be used in keys.
func ValidateProject(p string) error {
	if !ProjectPattern.MatchString(p) {
		return fmt.Errorf("project %q must match %s", p, ProjectPattern)
	}
	return nil
}
