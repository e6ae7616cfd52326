package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/processors/statesink"
)

// luaRepair sets one key to its recomputed state, atomically. KEYS[1] = the key;
// ARGV = mode, expire_at (Unix ms, 0 for none), then the mode's data:
//
//	del                      delete the key
//	incr  delta              add delta to a counter (the live writer may have counted
//	                         more since the check read it; those increments stay)
//	set   value              a string
//	hash  field, value, ...  a hash, replacing the old one
//	zset  score, member, ... a sorted set, replacing the old one
//
// An expiry already past deletes the key, as Valkey does.
const luaRepair = `
local k, mode, at = KEYS[1], ARGV[1], tonumber(ARGV[2])
if mode == 'del' then return redis.call('DEL', k) end
if mode == 'incr' then
  if redis.call('INCRBY', k, ARGV[3]) <= 0 then return redis.call('DEL', k) end
elseif mode == 'set' then
  redis.call('SET', k, ARGV[3])
elseif mode == 'hash' then
  redis.call('DEL', k)
  redis.call('HSET', k, unpack(ARGV, 3))
elseif mode == 'zset' then
  redis.call('DEL', k)
  redis.call('ZADD', k, unpack(ARGV, 3))
else
  return redis.error_reply('repair: unknown mode ' .. mode)
end
if at > 0 then redis.call('PEXPIREAT', k, ARGV[2]) else redis.call('PERSIST', k) end
return 1
`

// Repair writes the recomputed state of every key in rep.Differences — counters by
// the difference between the recomputed and the observed value, so that events counted
// since the check are kept; other keys replaced whole, with their recomputed expiry;
// unexpected keys deleted — and returns how many keys it fixed. Explained findings are
// left alone. A key whose repair fails is reported and the rest are repaired.
func Repair(ctx context.Context, client valkey.Client, prefix string, rep *Report) (int, error) {
	script := valkey.NewLuaScript(luaRepair)
	fixed := 0
	var errs []error
	for _, f := range rep.Differences {
		args, err := repairArgs(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := script.Exec(ctx, client, []string{prefix + f.Key}, args).Error(); err != nil {
			errs = append(errs, fmt.Errorf("repair %s: %w", f.Key, err))
			continue
		}
		fixed++
	}
	rep.Repaired = fixed
	return fixed, errors.Join(errs...)
}

func repairArgs(f Finding) ([]string, error) {
	w := f.Want
	if w == nil {
		return []string{"del", "0"}, nil
	}
	at := strconv.FormatInt(w.ExpireAtMs, 10)
	switch w.Type {
	case statesink.TypeString:
		counter := f.Kind == "rpm" || f.Kind == "tpm" || f.Kind == "rpd"
		if counter && (f.Got == nil || f.Got.Type == statesink.TypeString) {
			want, err := strconv.ParseInt(w.String, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("repair %s: counter value %q: %w", f.Key, w.String, err)
			}
			var got int64
			if f.Got != nil {
				got, _ = strconv.ParseInt(f.Got.String, 10, 64)
			}
			return []string{"incr", at, strconv.FormatInt(want-got, 10)}, nil
		}
		return []string{"set", at, w.String}, nil
	case statesink.TypeHash:
		args := []string{"hash", at}
		for _, k := range slices.Sorted(maps.Keys(w.Hash)) {
			args = append(args, k, w.Hash[k])
		}
		return args, nil
	case statesink.TypeZSet:
		args := []string{"zset", at}
		for _, m := range slices.Sorted(maps.Keys(w.ZSet)) {
			args = append(args, strconv.FormatFloat(w.ZSet[m], 'f', -1, 64), m)
		}
		return args, nil
	}
	return nil, fmt.Errorf("repair %s: type %s unknown", f.Key, w.Type)
}

// RepairParams summarizes a repair for its audit event.
func RepairParams(rep *Report) map[string]string {
	by := map[string]int{}
	for _, f := range rep.Differences {
		by[f.Problem]++
	}
	p := map[string]string{
		"fixed":     strconv.Itoa(rep.Repaired),
		"found":     strconv.Itoa(len(rep.Differences)),
		"explained": strconv.Itoa(len(rep.Explained)),
		"group":     rep.Group,
		"committed": rep.Committed.String(),
	}
	for k, n := range by {
		p[k] = strconv.Itoa(n)
	}
	return p
}
