package keypool

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// reserveLua checks one (project, model) pair and, when it has headroom, reserves
// quota for a batch of requests on it — atomically, so that no two callers (in this
// process or in another replica) are admitted on the same headroom. The requests of
// one instance that wait for the same pair at the same moment share one run (see
// batch.go): the pair's numbers are read once and the reservations written with one
// HSET and one increment of each total. Every key it touches carries the project's
// hash tag, so it runs on a cluster too.
//
// KEYS
//
//	1  rpm counter of the minute       schemas.Keys.MinuteRequests
//	2  tpm counter of the minute       schemas.Keys.MinuteTokens
//	3  rpd counter of the Pacific day  schemas.Keys.DayRequests
//	4  pending reservations            schemas.Keys.Pending
//	5  cool-down entry                 schemas.Keys.Cooldown
//	6  pending total of the minute     schemas.Keys.PendingMinute
//	7  pending total of the day        schemas.Keys.PendingDay
//	6+2i, 7+2i  for the i-th candidate key (i = 1..n, in the caller's preferred order):
//	   its blacklist entry and its failures ZSET (schemas.Keys.Blacklist, .Fails)
//
// ARGV
//
//	1 now (Unix ms)            2 the Unix minute of now     3 the Unix minute the Pacific day began
//	4 RPM limit                5 TPM limit                  6 RPD limit          (0 = unlimited)
//	7 input tokens a read checks against TPM               8 k, the number of reservations (0 = only read: the refresh and the admin API)
//	9 expiry of the reservations (Unix ms: end of the minute + schemas.MinuteCounterGrace)
//	10 failures that open a key's circuit (0 = never)  11 the failure window (ms)
//	12 the Pacific day (YYYYMMDD)   13 expiry of the day total (Unix ms)
//	14+2j, 15+2j  for the j-th reservation (j = 0..k-1, in order): its id and its
//	   estimated input tokens
//
// Pending entries are "<minute>:<tokens>:<expires-ms>:<day>". The pending requests and
// tokens of the minute and the pending requests of the day are read from their running
// totals (two small keys), not by parsing the hash: it holds every request not yet
// counted, thousands when the processors lag. Settling an entry (the processors when
// they count it, the ingress when the attempt consumed nothing) takes it out of the
// totals; see schemas.SettleReservationLua. When the hash grows past a few thousand
// entries, those expired ten minutes ago (whose events never came) are dropped, by a
// scan every 256 entries added, not on every call.
//
// Reservations are admitted in order, each against the numbers with the ones before it
// included; one that does not fit is refused and the next is still tried (a smaller
// request may fit TPM). Keys: a single reservation stops at the first usable key, as
// it takes the caller's order; a batch examines every key, and each request takes the
// first usable one in its own order (batch.go).
//
// Reply: {status, items, rpm, tpm, rpd, pending_req, pending_tok, pending_day,
// cooldown_until_ms, cooldown_reason, key_flags, extras}
//
//	status       "ok" | "cooldown" | "rpd" | "rpm" | "tpm" | "disabled" (every key
//	             unusable); for a batch, anything but "ok" refuses all of it
//	items        one character per reservation: "o" reserved, "d" / "m" / "t" refused
//	             for RPD / RPM / TPM ("" for a read)
//	rpm..pending_day  the pair's numbers, the new reservations included
//	cooldown_until_ms  end of the cool-down (0 none, -1 an entry without an end)
//	key_flags    one character per examined key: "." usable, "b" blacklisted, "c" circuit
//	             open
//	extras       for each "b", the blacklist entry (JSON); for each "c", when the circuit
//	             closes (Unix ms), in key order
const reserveLua = addPendingLua + `
local now = tonumber(ARGV[1])
local lrpm, ltpm, lrpd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local k = tonumber(ARGV[8])
local peek = k == 0
local maxfails = tonumber(ARGV[10])
local window = tonumber(ARGV[11])

local v = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[5], KEYS[7])
local rpm = tonumber(v[1] or 0) or 0
local tpm = tonumber(v[2] or 0) or 0
local rpd = tonumber(v[3] or 0) or 0
local cd = v[4]
local pd = math.max(0, tonumber(v[5] or 0) or 0)
local pm = redis.call('HMGET', KEYS[6], 'r', 't')
local pr = math.max(0, tonumber(pm[1] or 0) or 0)
local pt = math.max(0, tonumber(pm[2] or 0) or 0)

local cdu, cdr = 0, ''
if cd then
  local ok, e = pcall(cjson.decode, cd)
  if ok and type(e) == 'table' then
    if type(e['expiresAt']) == 'number' then cdu = e['expiresAt'] end
    if type(e['reason']) == 'string' then cdr = e['reason'] end
  end
  if cdu <= 0 then
    local ttl = redis.call('PTTL', KEYS[5])
    if ttl > 0 then cdu = now + ttl else cdu = -1 end
  end
end

local function over(tokens)
  if lrpd > 0 and rpd + pd + 1 > lrpd then return 'rpd' end
  if lrpm > 0 and rpm + pr + 1 > lrpm then return 'rpm' end
  if ltpm > 0 and tpm + pt + tokens > ltpm then return 'tpm' end
  return nil
end

local status = 'ok'
if cdu == -1 or cdu > now then status = 'cooldown'
elseif peek then status = over(tonumber(ARGV[7])) or 'ok'
else status = over(0) or 'ok'
end

local n = (#KEYS - 7) / 2
local flags, extras, usable = {}, {}, 0
if status == 'ok' or peek then
  local bls
  if n == 1 then bls = {redis.call('GET', KEYS[8])} elseif n > 1 then
    local names = {}
    for i = 1, n do names[i] = KEYS[6 + 2*i] end
    bls = redis.call('MGET', unpack(names))
  end
  for i = 1, n do
    local f = '.'
    local bl = bls[i]
    if bl then
      f = 'b'; extras[#extras+1] = bl
    elseif maxfails > 0 then
      local since = now - window
      local c = redis.call('ZCOUNT', KEYS[7 + 2*i], since, '+inf')
      if c >= maxfails then
        local r = redis.call('ZRANGEBYSCORE', KEYS[7 + 2*i], since, '+inf', 'WITHSCORES', 'LIMIT', c - maxfails, 1)
        f = 'c'; extras[#extras+1] = tostring(math.floor(tonumber(r[2]) + window))
      end
    end
    flags[i] = f
    if f == '.' then
      usable = usable + 1
      if k == 1 then break end
    end
  end
  if status == 'ok' and usable == 0 then status = 'disabled' end
end

local items, refusal = {}, {rpd = 'd', rpm = 'm', tpm = 't'}
if status == 'ok' and not peek then
  local fields, added, tok = {}, 0, 0
  for j = 0, k - 1 do
    local t = tonumber(ARGV[15 + 2*j])
    local s = over(t)
    if s then
      items[#items+1] = refusal[s]
    else
      items[#items+1] = 'o'
      fields[#fields+1] = ARGV[14 + 2*j]
      fields[#fields+1] = ARGV[2] .. ':' .. t .. ':' .. ARGV[9] .. ':' .. ARGV[12]
      pr, pt, pd = pr + 1, pt + t, pd + 1
      added, tok = added + 1, tok + t
    end
  end
  if added > 0 then
    local len = add_pending(KEYS[4], KEYS[6], KEYS[7], fields, added, tok, ARGV[9], ARGV[13])
    if len > 4096 and math.floor(len / 256) ~= math.floor((len - added) / 256) then
      local h = redis.call('HGETALL', KEYS[4])
      local dead = {}
      for i = 1, #h, 2 do
        local e = tonumber(string.match(h[i+1], '^%d+:%d+:(%d+)'))
        if e == nil or e + 600000 <= now then dead[#dead+1] = h[i] end
      end
      for i = 1, #dead, 1000 do
        redis.call('HDEL', KEYS[4], unpack(dead, i, math.min(i + 999, #dead)))
      end
    end
  end
end
return {status, table.concat(items), rpm, tpm, rpd, pr, pt, pd, cdu, cdr, table.concat(flags), extras}
`

// Reservation statuses.
const (
	statusOK       = "ok"
	statusCooldown = "cooldown"
	statusRPD      = "rpd"
	statusRPM      = "rpm"
	statusTPM      = "tpm"
	statusDisabled = "disabled"
)

// scriptReply is a decoded reply of reserveLua.
type scriptReply struct {
	status string
	// items holds, for each reservation of the call, 'o' (reserved) or the refusal:
	// 'd' rpd, 'm' rpm, 't' tpm. Empty for a read or when status refuses them all.
	items          string
	rpm, tpm, rpd  int64
	pendReq        int64
	pendTok        int64
	pendDay        int64
	cooldownUntil  time.Time
	cooldownReason string
	// keys holds what was learnt about each examined key, in order.
	keys []keyFlag
}

type keyFlag struct {
	usable      bool
	blacklisted *schemas.BlacklistEntry
	openUntil   time.Time
}

// scriptCall is the KEYS and ARGV of one run of reserveLua.
type scriptCall struct {
	keys []string
	args []string
}

// reservationArg is one reservation of a script call.
type reservationArg struct {
	id     string
	tokens int64
}

type scriptParams struct {
	project, model string
	keyHashes      []string
	now            time.Time
	tokens         int64 // what a read checks against TPM
	limits         Limits
	reservations   []reservationArg // none: only read
	maxFails       int
	failWindow     time.Duration
}

func buildScriptCall(k schemas.Keys, w window, p scriptParams) scriptCall {
	minute := w.minute
	keys := make([]string, 0, 5+2*len(p.keyHashes))
	keys = append(keys,
		k.MinuteRequests(p.project, p.model, minute),
		k.MinuteTokens(p.project, p.model, minute),
		k.DayRequests(p.project, p.model, w.day),
		k.Pending(p.project, p.model),
		k.Cooldown(p.project, p.model),
		k.PendingMinute(p.project, p.model, minute),
		k.PendingDay(p.project, p.model, w.day),
	)
	for _, h := range p.keyHashes {
		keys = append(keys, k.Blacklist(p.project, h), k.Fails(p.project, h))
	}
	expires := schemas.MinuteCounterExpiry(p.now).UnixMilli()
	args := make([]string, 0, 13+2*len(p.reservations))
	args = append(args,
		strconv.FormatInt(p.now.UnixMilli(), 10),
		strconv.FormatInt(minute, 10),
		strconv.FormatInt(w.dayStart, 10),
		strconv.FormatInt(p.limits.RPM, 10),
		strconv.FormatInt(p.limits.TPM, 10),
		strconv.FormatInt(p.limits.RPD, 10),
		strconv.FormatInt(p.tokens, 10),
		strconv.Itoa(len(p.reservations)),
		strconv.FormatInt(expires, 10),
		strconv.Itoa(p.maxFails),
		strconv.FormatInt(p.failWindow.Milliseconds(), 10),
		w.day,
		strconv.FormatInt(schemas.DayCounterExpiry(p.now).UnixMilli(), 10),
	)
	for _, r := range p.reservations {
		args = append(args, r.id, strconv.FormatInt(r.tokens, 10))
	}
	return scriptCall{keys: keys, args: args}
}

// window is the quota windows a moment falls in.
type window struct {
	minute   int64  // Unix minute
	day      string // Pacific day, YYYYMMDD
	dayStart int64  // the Unix minute the Pacific day began
}

func windowOf(t time.Time) window {
	p := t.In(schemas.Pacific())
	y, m, d := p.Date()
	return window{
		minute:   schemas.MinuteOf(t),
		day:      p.Format("20060102"),
		dayStart: schemas.MinuteOf(time.Date(y, m, d, 0, 0, 0, 0, schemas.Pacific())),
	}
}

func parseScriptReply(msg valkey.ValkeyMessage, now time.Time) (*scriptReply, error) {
	arr, err := msg.ToArray()
	if err != nil {
		return nil, fmt.Errorf("reservation reply: %w", err)
	}
	if len(arr) != 12 {
		return nil, fmt.Errorf("reservation reply has %d elements, want 12", len(arr))
	}
	var r scriptReply
	str := func(i int) string { s, _ := arr[i].ToString(); return s }
	num := func(i int) int64 { n, _ := arr[i].AsInt64(); return n }
	r.status = str(0)
	r.items = str(1)
	r.rpm, r.tpm, r.rpd = num(2), num(3), num(4)
	r.pendReq, r.pendTok, r.pendDay = num(5), num(6), num(7)
	switch cdu := num(8); {
	case cdu > 0:
		r.cooldownUntil = time.UnixMilli(cdu)
	case cdu < 0:
		// An entry without an end; the processors always set one, so treat it as
		// lasting to the end of the minute and look again then.
		r.cooldownUntil = schemas.MinuteEnd(now)
	}
	r.cooldownReason = str(9)
	flags := str(10)
	extras, _ := arr[11].ToArray()
	r.keys = make([]keyFlag, len(flags))
	e := 0
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case '.':
			r.keys[i].usable = true
		case 'b':
			entry := &schemas.BlacklistEntry{Reason: "disabled"}
			if e < len(extras) {
				if s, err := extras[e].ToString(); err == nil {
					_ = json.Unmarshal([]byte(s), entry)
				}
			}
			e++
			r.keys[i].blacklisted = entry
		case 'c':
			if e < len(extras) {
				if s, err := extras[e].ToString(); err == nil {
					if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
						r.keys[i].openUntil = time.UnixMilli(ms)
					}
				}
			}
			e++
		}
	}
	return &r, nil
}

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}
