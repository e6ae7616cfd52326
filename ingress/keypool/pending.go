package keypool

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas"
)

// addPendingLua defines add_pending(hash, minuteTotal, dayTotal, fields, n, tokens,
// minuteExpiry, dayExpiry): it records n reservations (fields: id, entry, id, entry, ...)
// and adds them to the running totals the reservation script reads (see
// schemas.Keys.Pending); it returns the hash's length. The hash lives until the day
// total does: an entry may be settled late (the processors lag, Kafka is down) and must
// still be found to leave the day total.
//
// Every script call costs per redis.call, so expiries are set only when a key is new:
// the hash holds only this call's entries (it was empty, and every writer sets its
// expiry here), a total equals what this call added (settling never recreates an
// expired total). Otherwise the hash's expiry only moves forward (GT), to the end of
// the latest day it holds entries of.
const addPendingLua = `
local function add_pending(hash, mtotal, dtotal, fields, n, tokens, mexp, dexp)
  redis.call('HSET', hash, unpack(fields))
  local len = redis.call('HLEN', hash)
  if len == n then
    redis.call('PEXPIREAT', hash, dexp)
  else
    redis.call('PEXPIREAT', hash, dexp, 'GT')
  end
  if redis.call('HINCRBY', mtotal, 'r', n) == n then redis.call('PEXPIREAT', mtotal, mexp) end
  redis.call('HINCRBY', mtotal, 't', tokens)
  if redis.call('INCRBY', dtotal, n) == n then redis.call('PEXPIREAT', dtotal, dexp) end
  return len
end
`

// handoverLua records one reservation: KEYS = hash, minute total, day total; ARGV = id,
// entry, tokens, minute expiry, day expiry.
const handoverLua = addPendingLua + `
add_pending(KEYS[1], KEYS[2], KEYS[3], {ARGV[1], ARGV[2]}, 1, tonumber(ARGV[3]), ARGV[4], ARGV[5])
return 1
`

// settleLua settles one reservation: KEYS[1] = its pending hash, ARGV[1] = its id.
const settleLua = schemas.SettleReservationLua + `
return settle(KEYS[1], ARGV[1])
`

// pendingEntry is a reservation as the pending hash stores it.
func pendingEntry(minute, tokens, expiresMs int64, day string) string {
	return strconv.FormatInt(minute, 10) + ":" + strconv.FormatInt(tokens, 10) + ":" + strconv.FormatInt(expiresMs, 10) + ":" + day
}

// settle takes reservations out of Valkey (attempts that consumed no quota), one script
// call per reservation, all in one round trip. It returns the ones that failed.
//
// Settling is idempotent, so a call that failed in transport (a connection that died
// while the pool was idle, found dead only by this call) is sent once more at once;
// valkey-go resends only commands it knows to be read-only.
func (p *Pool) settle(ctx context.Context, os []orphan) ([]orphan, error) {
	failed, err := p.settleOnce(ctx, os)
	if len(failed) == 0 || ctx.Err() != nil {
		return failed, err
	}
	if _, reply := valkey.IsValkeyErr(errors.Unwrap(err)); reply {
		return failed, err
	}
	return p.settleOnce(ctx, failed)
}

func (p *Pool) settleOnce(ctx context.Context, os []orphan) ([]orphan, error) {
	execs := make([]valkey.LuaExec, len(os))
	for i, o := range os {
		execs[i] = valkey.LuaExec{Keys: []string{p.keys.Pending(o.project, o.model)}, Args: []string{o.id}}
	}
	var failed []orphan
	var first error
	for i, r := range p.settleScript.ExecMulti(ctx, p.client, execs...) {
		if err := r.Error(); err != nil {
			failed = append(failed, os[i])
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return failed, fmt.Errorf("settle %d reservations: %w", len(failed), first)
	}
	return nil, nil
}
