package statesink

import (
	"strconv"
	"strings"

	"github.com/geminicodeapi/gca/schemas"
)

// Both scripts take one key, KEYS[1] = the project's tag "<prefix>{<project>}:", and
// build every key they touch as that tag plus a suffix from ARGV. All of those keys
// share the "{project}" hash tag, so on a cluster they live in the slot KEYS[1] routes
// the call to, and one script updates a project atomically. Numbers travel as decimal
// strings; Lua 5.1's doubles hold Unix milliseconds and token sums exactly (< 2^53), and
// string.format('%d') turns them back into integers without an exponent.

// luaHealth is shared by both scripts. apply_health merges an aggregate of health ops
// (see healthOp for the rules that make the order irrelevant) into the key's health hash
// H and failure set F:
//
//	s = {ok = max success ts, f = {{ts, kind, member, expire_at}, ...},
//	     latn = attempts, lats = latency sum, exp = max expire_at}
//
// Every call into Valkey from Lua costs about a microsecond, so the hash is read once,
// written once, and its expiry raised with PEXPIREAT GT (which treats a key without
// expiry as infinite, hence the plain PEXPIREAT when the hash is new).
const luaHealth = `
local function fmt(n) return string.format('%d', n) end

local function expire_max(k, at)
  local cur = redis.call('PEXPIRETIME', k)
  if cur ~= -2 and cur < at then redis.call('PEXPIREAT', k, fmt(at)) end
end

local function apply_health(H, F, s)
  local cur = redis.call('HMGET', H, 'ok_ms', 'fail_ms', 'fail_kind', 'lat_n', 'lat_sum_ms')
  local new = not (cur[1] or cur[2] or cur[4])
  local ok0, fm0 = tonumber(cur[1]) or 0, tonumber(cur[2]) or 0
  local ok, fm, fk = ok0, fm0, cur[3] or ''
  local set = {}
  if s.ok > ok then
    ok = s.ok
    set[#set + 1] = 'ok_ms'
    set[#set + 1] = fmt(ok)
    -- F holds failures after ok_ms, none after fail_ms: it is empty unless fail_ms
    -- was after the old ok_ms.
    if fm0 > ok0 then redis.call('ZREMRANGEBYSCORE', F, '-inf', fmt(ok)) end
  end
  local changed, fexp = false, 0
  for _, f in ipairs(s.f) do
    if f[1] > fm or (f[1] == fm and f[2] > fk) then fm, fk, changed = f[1], f[2], true end
    if f[1] > ok then
      redis.call('ZADD', F, fmt(f[1]), f[3])
      if f[4] > fexp then fexp = f[4] end
    end
  end
  if changed then
    set[#set + 1] = 'fail_ms'
    set[#set + 1] = fmt(fm)
    set[#set + 1] = 'fail_kind'
    set[#set + 1] = fk
  end
  if s.latn > 0 then
    set[#set + 1] = 'lat_n'
    set[#set + 1] = fmt((tonumber(cur[4]) or 0) + s.latn)
    set[#set + 1] = 'lat_sum_ms'
    set[#set + 1] = fmt((tonumber(cur[5]) or 0) + s.lats)
  end
  if #set > 0 then redis.call('HSET', H, unpack(set)) end
  if new then
    redis.call('PEXPIREAT', H, fmt(s.exp))
  else
    redis.call('PEXPIREAT', H, fmt(s.exp), 'GT')
  end
  if fexp > 0 then expire_max(F, fexp) end
end
`

// luaRequests applies request events to one project, each at most once.
//
//	ARGV = E, E x (mark suffix, mark expire_at),
//	       C, C x (counter suffix, increment, expire_at),
//	       H, H x (health suffix, fails suffix, ok_ms, lat_n, lat_sum_ms, expire_at,
//	               F, F x (ts, fail kind, member, expire_at)),
//	       P, P x (pending suffix, reservation id)
//
// The counters and health ops are the sum of the E events' ops, aggregated by the
// caller (requestCall). The script sets every event's applied mark with SET NX; when
// all marks were new it applies the aggregate and returns an empty array. When some
// were already set (redelivery, replay, a concurrent writer), it deletes the marks it
// has just set, applies nothing, and returns the 1-based positions of the events
// already applied: the caller drops them and sends the rest again. Being atomic, the
// script never leaves a mark without its increments, nor increments without a mark.
// Aggregating in Go keeps the per-event work in Lua to one SET: parsing numbers costs
// Lua 5.1 a quarter of a microsecond each, and events far outnumber counters.
const luaRequests = luaHealth + schemas.SettleReservationLua + `
local tag, a, n = KEYS[1], ARGV, #ARGV
-- Check the layout before writing anything: a malformed call fails cleanly instead of
-- looping on a misread count with writes done (which Valkey cannot kill).
local ne = tonumber(a[1])
if not ne or ne < 0 or 2 * ne + 2 > n then return redis.error_reply('statesink: malformed request arguments') end
local i = 2 * ne + 2
local nc = tonumber(a[i])
if not nc or nc < 0 or i + 3 * nc + 1 > n then return redis.error_reply('statesink: malformed request arguments') end
i = i + 3 * nc + 1
local nh = tonumber(a[i])
if not nh or nh < 0 then return redis.error_reply('statesink: malformed request arguments') end
for _ = 1, nh do
  local nf = tonumber(a[i + 7])
  if not nf or nf < 0 or i + 7 + 4 * nf > n then return redis.error_reply('statesink: malformed request arguments') end
  i = i + 7 + 4 * nf
end
i = i + 1
local np = tonumber(a[i])
if not np or np < 0 or i + 2 * np ~= n then return redis.error_reply('statesink: malformed request arguments') end

local stale = {}
for j = 1, ne do
  if not redis.call('SET', tag .. a[2 * j], '1', 'NX', 'PXAT', a[2 * j + 1]) then
    stale[#stale + 1] = j
  end
end
if #stale > 0 then
  local s = 1
  for j = 1, ne do
    if j == stale[s] then s = s + 1 else redis.call('DEL', tag .. a[2 * j]) end
  end
  return stale
end

i = 2 * ne + 1
local function nxt() i = i + 1; return a[i] end
for _ = 1, tonumber(nxt()) do
  -- A counter gets its expiry when INCRBY creates it; the window fixes the expiry, so
  -- an existing counter already has it.
  local k, inc, at = tag .. nxt(), nxt(), nxt()
  if redis.call('INCRBY', k, inc) == tonumber(inc) then redis.call('PEXPIREAT', k, at) end
end
for _ = 1, tonumber(nxt()) do
  local H, F = tag .. nxt(), tag .. nxt()
  local s = {ok = tonumber(nxt()), latn = tonumber(nxt()), lats = tonumber(nxt()), exp = tonumber(nxt()), f = {}}
  for j = 1, tonumber(nxt()) do
    s.f[j] = {tonumber(nxt()), nxt(), nxt(), tonumber(nxt())}
  end
  apply_health(H, F, s)
end
-- The reservations the counted attempts held: what was pending is now counted. They
-- are settled per pending hash, each hash with one read and one delete.
local byHash, hashes = {}, {}
for _ = 1, tonumber(nxt()) do
  local hash = tag .. nxt()
  local ids = byHash[hash]
  if not ids then ids = {}; byHash[hash] = ids; hashes[#hashes + 1] = hash end
  ids[#ids + 1] = nxt()
end
for _, hash in ipairs(hashes) do settle_many(hash, byHash[hash]) end
return {}
`

// luaKeyStates applies key-state ops of one project in order.
//
//	ARGV = ops, each one of
//	  'c', key suffix, value, until   cool-down: SET PXAT until unless it expires later
//	  's', key suffix, value          SET without expiry
//	  'd', N, N x key suffix          DEL
//	  'r', health suffix, fails suffix, ts, expire_at   health reset (a success at ts)
//
// It returns the number of arguments.
const luaKeyStates = luaHealth + `
local tag, a, n = KEYS[1], ARGV, #ARGV
local width = {c = 4, s = 3, r = 5}
-- Check the layout before writing anything (see luaRequests).
local i = 1
while i <= n do
  local w = width[a[i]]
  if a[i] == 'd' then
    local m = tonumber(a[i + 1])
    w = (m and m >= 0) and 2 + m or nil
  end
  if not w or i + w - 1 > n then return redis.error_reply('statesink: malformed key-state arguments') end
  i = i + w
end
i = 1
while i <= n do
  local c = a[i]
  if c == 'c' then
    local k = tag .. a[i + 1]
    if redis.call('PEXPIRETIME', k) < tonumber(a[i + 3]) then
      redis.call('SET', k, a[i + 2], 'PXAT', a[i + 3])
    end
  elseif c == 's' then
    redis.call('SET', tag .. a[i + 1], a[i + 2])
  elseif c == 'd' then
    for j = 1, tonumber(a[i + 1]) do redis.call('DEL', tag .. a[i + 1 + j]) end
  elseif c == 'r' then
    apply_health(tag .. a[i + 1], tag .. a[i + 2],
      {ok = tonumber(a[i + 3]), f = {}, latn = 0, lats = 0, exp = tonumber(a[i + 4])})
  end
  i = i + (width[c] or 2 + tonumber(a[i + 1]))
end
return n
`

// requestCall holds the events of one luaRequests call for one project.
type requestCall struct {
	tag    string
	events []*projectOps
}

// healthAgg is the sum of a key's health ops, as apply_health takes it.
type healthAgg struct {
	health, fails string
	okMs          int64
	latN, latSum  int64
	expireAtMs    int64
	failures      []*healthOp
}

// args aggregates the events' ops and encodes them for luaRequests.
func (c *requestCall) args() []string {
	rel := func(k string) string { return strings.TrimPrefix(k, c.tag) }
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	out := make([]string, 0, 2+2*len(c.events)+16)
	out = append(out, strconv.Itoa(len(c.events)))
	var (
		counters []counterOp
		cIdx     = map[string]int{}
		health   []*healthAgg
		hIdx     = map[string]int{}
	)
	for _, p := range c.events {
		out = append(out, rel(p.Mark), itoa(p.MarkExpireAtMs))
		for _, op := range p.Counters {
			if i, ok := cIdx[op.Key]; ok {
				counters[i].N += op.N
				continue
			}
			cIdx[op.Key] = len(counters)
			counters = append(counters, op)
		}
		for i := range p.Health {
			op := &p.Health[i]
			j, ok := hIdx[op.Health]
			if !ok {
				j = len(health)
				hIdx[op.Health] = j
				health = append(health, &healthAgg{health: op.Health, fails: op.Fails})
			}
			h := health[j]
			switch op.Outcome {
			case outcomeOK:
				h.okMs = max(h.okMs, op.TsMs)
			case outcomeFail:
				h.failures = append(h.failures, op)
			}
			if op.Latency {
				h.latN++
				h.latSum += op.LatencyMs
			}
			h.expireAtMs = max(h.expireAtMs, op.ExpireAtMs)
		}
	}
	out = append(out, strconv.Itoa(len(counters)))
	for _, op := range counters {
		out = append(out, rel(op.Key), itoa(op.N), itoa(op.ExpireAtMs))
	}
	out = append(out, strconv.Itoa(len(health)))
	for _, h := range health {
		out = append(out, rel(h.health), rel(h.fails), itoa(h.okMs), itoa(h.latN), itoa(h.latSum),
			itoa(h.expireAtMs), strconv.Itoa(len(h.failures)))
		for _, f := range h.failures {
			out = append(out, itoa(f.TsMs), f.FailKind, f.Member, itoa(f.ExpireAtMs))
		}
	}
	np := 0
	for _, p := range c.events {
		np += len(p.Pending)
	}
	out = append(out, strconv.Itoa(np))
	for _, p := range c.events {
		for _, op := range p.Pending {
			out = append(out, rel(op.Key), op.Field)
		}
	}
	return out
}

// without returns the call without the events at the given 1-based positions.
func (c *requestCall) without(stale []int64) *requestCall {
	drop := make(map[int]bool, len(stale))
	for _, j := range stale {
		drop[int(j)-1] = true
	}
	out := &requestCall{tag: c.tag}
	for i, p := range c.events {
		if !drop[i] {
			out.events = append(out.events, p)
		}
	}
	return out
}

// keyStateArgs encodes ops of one project for luaKeyStates.
func keyStateArgs(tag string, ops []stateOp) []string {
	var out []string
	rel := func(k string) string { return strings.TrimPrefix(k, tag) }
	for _, op := range ops {
		switch op.Code {
		case codeCooldown:
			out = append(out, "c", rel(op.Keys[0]), op.Value, strconv.FormatInt(op.AtMs, 10))
		case codeSet:
			out = append(out, "s", rel(op.Keys[0]), op.Value)
		case codeDel:
			out = append(out, "d", strconv.Itoa(len(op.Keys)))
			for _, k := range op.Keys {
				out = append(out, rel(k))
			}
		case codeHealthReset:
			out = append(out, "r", rel(op.Health.Health), rel(op.Health.Fails),
				strconv.FormatInt(op.Health.TsMs, 10), strconv.FormatInt(op.Health.ExpireAtMs, 10))
		}
	}
	return out
}
