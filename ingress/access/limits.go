package access

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// Per-token request limits (Token.RPM, Token.RPD) are shared by all replicas: each
// admission runs one Lua script on Valkey that checks and increments the token's
// counters of the minute and of the Pacific day — one round trip, and only for tokens
// that have limits. The operator's "60 requests a minute" then means 60 for the whole
// deployment, and a restart forgets nothing.
//
// When Valkey cannot be reached the limiter fails open within local limits, like the
// key pool: it counts on from the last numbers Valkey gave for the token, in this
// instance alone, so during an outage each replica may admit up to the full limit
// minus what it last saw: over-admission is at most (replicas − 1) × limit per window.
//
// Key layout (not in schemas: only the ingress reads or writes it; it is not derived
// state and no processor or replay touches it):
//
//	<prefix>token:{<token-id>}:rpm:<unix-minute>  STRING int, expires at the minute's end + schemas.MinuteCounterGrace
//	<prefix>token:{<token-id>}:rpd:<YYYYMMDD>     STRING int, expires at Pacific midnight + schemas.DayCounterGrace
//
// KEYS: 1 the minute counter, 2 the day counter.
// ARGV: 1 RPM limit, 2 RPD limit (0 = unlimited), 3 the minute counter's expiry (Unix
// ms), 4 the day counter's expiry (Unix ms).
// Reply: {status ("ok" | "rpm" | "rpd"), minute count, day count}, the counts
// including this request when admitted.
const tokenLimitLua = `
local v = redis.call('MGET', KEYS[1], KEYS[2])
local m, d = tonumber(v[1] or 0) or 0, tonumber(v[2] or 0) or 0
local lm, ld = tonumber(ARGV[1]), tonumber(ARGV[2])
if ld > 0 and d + 1 > ld then return {'rpd', m, d} end
if lm > 0 and m + 1 > lm then return {'rpm', m, d} end
m = redis.call('INCR', KEYS[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
d = redis.call('INCR', KEYS[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[4])
return {'ok', m, d}
`

type tokenLimiter struct {
	client  valkey.Client // nil: local only
	prefix  string
	timeout time.Duration
	script  *valkey.Lua

	degraded   atomic.Bool
	onDegraded func(bool)

	mu    sync.Mutex
	local map[string]*tokenCount
}

// tokenCount is the last known use of a token: Valkey's numbers, plus what this
// instance admitted since without Valkey.
type tokenCount struct {
	minute int64
	m      int64
	day    string
	d      int64
}

func newTokenLimiter(c valkey.Client, prefix string, timeout time.Duration, onDegraded func(bool)) *tokenLimiter {
	return &tokenLimiter{client: c, prefix: prefix, timeout: timeout, script: valkey.NewLuaScript(tokenLimitLua),
		onDegraded: onDegraded, local: map[string]*tokenCount{}}
}

func (l *tokenLimiter) keys(id string, minute int64, day string) []string {
	tag := l.prefix + "token:{" + id + "}:"
	return []string{tag + "rpm:" + strconv.FormatInt(minute, 10), tag + "rpd:" + day}
}

// admit counts one request of the token against its limits, or says which is used up
// and when it frees.
func (l *tokenLimiter) admit(ctx context.Context, id string, rpm, rpd int64, now time.Time) error {
	if rpm <= 0 && rpd <= 0 {
		return nil
	}
	minute, day := schemas.MinuteOf(now), schemas.PacificDay(now)
	if l.client != nil {
		tctx, cancel := context.WithTimeout(ctx, l.timeout)
		res := l.script.Exec(tctx, l.client, l.keys(id, minute, day), []string{
			strconv.FormatInt(rpm, 10), strconv.FormatInt(rpd, 10),
			strconv.FormatInt(schemas.MinuteCounterExpiry(now).UnixMilli(), 10),
			strconv.FormatInt(schemas.DayCounterExpiry(now).UnixMilli(), 10),
		})
		cancel()
		arr, err := res.ToArray()
		if err == nil && len(arr) == 3 {
			status, _ := arr[0].ToString()
			m, _ := arr[1].AsInt64()
			d, _ := arr[2].AsInt64()
			l.setDegraded(false)
			l.mu.Lock()
			c := l.local[id]
			if c == nil {
				c = &tokenCount{}
				l.local[id] = c
			}
			*c = tokenCount{minute: minute, m: m, day: day, d: d}
			l.mu.Unlock()
			return verdict(status, now)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("token limits: %w", ctx.Err())
		}
		l.setDegraded(true)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.local[id]
	if c == nil {
		c = &tokenCount{}
		l.local[id] = c
	}
	if c.minute != minute {
		c.minute, c.m = minute, 0
	}
	if c.day != day {
		c.day, c.d = day, 0
	}
	switch {
	case rpd > 0 && c.d+1 > rpd:
		return verdict("rpd", now)
	case rpm > 0 && c.m+1 > rpm:
		return verdict("rpm", now)
	}
	c.m++
	c.d++
	return nil
}

func verdict(status string, now time.Time) error {
	switch status {
	case "rpm":
		return ErrTokenRateLimited.until(schemas.MinuteEnd(now))
	case "rpd":
		return ErrTokenDailyLimit.until(schemas.NextPacificMidnight(now))
	}
	return nil
}

func (l *tokenLimiter) setDegraded(d bool) {
	if l.degraded.Swap(d) != d && l.onDegraded != nil {
		l.onDegraded(d)
	}
}
