package replay

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/valkey-io/valkey-go"
)

type valkeyClient = valkey.Client

// countKeys counts the keys under prefix on every node, stopping at limit (0: no limit).
func countKeys(ctx context.Context, c valkey.Client, prefix string, limit int) (int, error) {
	n := 0
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return n, fmt.Errorf("scan %s*: %w", prefix, err)
			}
			n += len(e.Elements)
			if (limit > 0 && n >= limit) || e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
		if limit > 0 && n >= limit {
			return n, nil
		}
	}
	return n, nil
}

// deleteKeys removes every key under prefix on every node and returns how many.
func deleteKeys(ctx context.Context, c valkey.Client, prefix string) (int, error) {
	n := 0
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return n, fmt.Errorf("scan %s*: %w", prefix, err)
			}
			if len(e.Elements) > 0 {
				// One key per command: on a cluster the keys of one page lie in many slots.
				cmds := make(valkey.Commands, len(e.Elements))
				for i, k := range e.Elements {
					cmds[i] = node.B().Unlink().Key(k).Build()
				}
				for _, r := range node.DoMulti(ctx, cmds...) {
					if err := r.Error(); err != nil {
						return n, fmt.Errorf("unlink under %s: %w", prefix, err)
					}
				}
				n += len(e.Elements)
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return n, nil
}

// luaSwap replaces the live state by a fresh replay's, atomically on the node it runs
// on. ARGV = live prefix, fresh prefix.
//
// Only derived state moves: keys "<prefix>{<project>}:..." other than the ingress's
// pending reservations. Everything else under the live prefix — pending reservations
// (requests in flight, which no replayed event describes yet) and the ingress's token
// rate-limit counters ("<prefix>token:{id}:...") — is left as it is, and the fresh
// replay's bookkeeping ("<fresh>replay") stays behind for the caller.
//
// The script first deletes the live derived keys, then renames the fresh ones into their
// place; a rename keeps the key's expiry. It enumerates with SCAN inside the script, so
// no writer can add a key between the listing and the swap: the live consumer's scripts
// run before or after this one, never in between. Deleting while scanning is safe (SCAN
// returns every key present for the whole iteration); the renamed keys never match the
// fresh pattern again, and the two patterns are disjoint (checkPrefixes). The applied
// marks move with the fresh state, so an event the replay counted is not counted again
// by a lagging live consumer or a later in-place replay; the live marks of events after
// the replay's end go with the live counters, and the catch-up counts those events
// again, once.
//
// The script holds the node for the time it takes (one pass over the node's keyspace
// per pattern, plus a delete or rename per key — about a second per million keys here):
// run the switch when the pause is acceptable. It declares no keys and runs with
// allow-cross-slot-keys, so on a cluster it runs once per primary, each over its own
// slots; a project's live and fresh keys share the "{project}" hash tag, hence a slot,
// so each project is switched atomically on its node.
const luaSwap = `#!lua flags=allow-cross-slot-keys
local live, fresh = ARGV[1], ARGV[2]
local function derived(rest)
  return string.sub(rest, 1, 1) == '{' and not string.find(rest, '}:pending:', 1, true)
end
local deleted, moved, cursor = 0, 0, '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', live .. '*', 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    if derived(string.sub(k, #live + 1)) then
      redis.call('UNLINK', k)
      deleted = deleted + 1
    end
  end
until cursor == '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', fresh .. '*', 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do
    local rest = string.sub(k, #fresh + 1)
    if derived(rest) then
      redis.call('RENAME', k, live .. rest)
      moved = moved + 1
    end
  end
until cursor == '0'
return {deleted, moved}
`

// swapValkey runs luaSwap on every primary and returns the keys deleted and moved.
func swapValkey(ctx context.Context, c valkey.Client, live, fresh string) (deleted, moved int64, err error) {
	if err := checkPrefixes(live, fresh); err != nil {
		return 0, 0, err
	}
	script := valkey.NewLuaScript(luaSwap)
	for addr, node := range c.Nodes() {
		res, err := script.Exec(ctx, node, nil, []string{live, fresh}).AsIntSlice()
		if err != nil {
			// The client may give up (a timeout) while the script still runs: a
			// script is atomic, so once the node answers again, either every fresh
			// key moved or none did.
			left, cerr := countDerived(context.WithoutCancel(ctx), node, fresh)
			if cerr == nil && left == 0 {
				continue
			}
			return deleted, moved, fmt.Errorf("swap %s for %s on %s: %w", live, fresh, addr, err)
		}
		if len(res) == 2 {
			deleted += res[0]
			moved += res[1]
		}
	}
	return deleted, moved, nil
}

// luaSwapProject replaces listed keys of one project. KEYS[1] = the live tag
// "<live>{project}:"; ARGV = the fresh tag, the number of live suffixes to delete, those
// suffixes, then the suffixes to rename from the fresh tag to the live one (a rename
// overwrites the live key of the same name and keeps the fresh key's expiry).
const luaSwapProject = `
local live, fresh, nd = KEYS[1], ARGV[1], tonumber(ARGV[2])
for i = 3, 2 + nd do redis.call('UNLINK', live .. ARGV[i]) end
local moved = 0
for i = 3 + nd, #ARGV do
  if redis.call('EXISTS', fresh .. ARGV[i]) == 1 then
    redis.call('RENAME', fresh .. ARGV[i], live .. ARGV[i])
    moved = moved + 1
  end
end
return {nd, moved}
`

// swapChunk bounds the keys one luaSwapProject call moves, so that no call holds Valkey
// for more than a few milliseconds.
const swapChunk = 2000

// swapValkeyByProject replaces the live derived state by the fresh one project by
// project. It lists the keys first, so it is only correct while no live writer runs:
// the processors' Valkey consumer must be stopped (Switch checks its group has no
// member). The ingress keeps reading meanwhile: each project's counters, cool-downs,
// disabled keys and health change in one script (its first), and its applied marks —
// which only writers read — follow in chunks.
func swapValkeyByProject(ctx context.Context, c valkey.Client, live, fresh string) (deleted, moved int64, err error) {
	if err := checkPrefixes(live, fresh); err != nil {
		return 0, 0, err
	}
	type project struct{ del, put []string }
	projects := map[string]*project{}
	list := func(prefix string, add func(p *project, rest string)) error {
		return eachKey(ctx, c, prefix, func(k string) {
			rest := strings.TrimPrefix(k, prefix)
			end := strings.Index(rest, "}:")
			if !strings.HasPrefix(rest, "{") || end < 0 || strings.Contains(rest, "}:pending:") {
				return
			}
			tag := rest[:end+2]
			p := projects[tag]
			if p == nil {
				p = &project{}
				projects[tag] = p
			}
			add(p, rest[end+2:])
		})
	}
	if err := list(live, func(p *project, s string) { p.del = append(p.del, s) }); err != nil {
		return 0, 0, err
	}
	if err := list(fresh, func(p *project, s string) { p.put = append(p.put, s) }); err != nil {
		return 0, 0, err
	}
	script := valkey.NewLuaScript(luaSwapProject)
	for tag, p := range projects {
		// A rename replaces the live key of the same name: delete only the others.
		putSet := make(map[string]bool, len(p.put))
		for _, s := range p.put {
			putSet[s] = true
		}
		var del []string
		for _, s := range p.del {
			if !putSet[s] {
				del = append(del, s)
			}
		}
		// State first, marks last: the first call switches everything the ingress reads.
		isMark := func(s string) bool { return strings.HasPrefix(s, "applied:") }
		slices.SortStableFunc(del, func(a, b string) int { return cmpBool(isMark(a), isMark(b)) })
		slices.SortStableFunc(p.put, func(a, b string) int { return cmpBool(isMark(a), isMark(b)) })
		for len(del)+len(p.put) > 0 {
			nd := min(len(del), swapChunk)
			np := min(len(p.put), swapChunk-nd)
			if len(del) > nd || len(p.put) > np {
				// A chunk must not split the state the ingress reads: keep the first
				// call whole up to the first mark.
				for nd < len(del) && !isMark(del[nd]) {
					nd++
				}
				for np < len(p.put) && !isMark(p.put[np]) {
					np++
				}
			}
			args := append([]string{fresh + tag, strconv.Itoa(nd)}, del[:nd]...)
			args = append(args, p.put[:np]...)
			res, err := script.Exec(ctx, c, []string{live + tag}, args).AsIntSlice()
			if err != nil {
				return deleted, moved, fmt.Errorf("swap %s%s: %w", live, tag, err)
			}
			deleted += res[0]
			moved += res[1]
			del, p.put = del[nd:], p.put[np:]
		}
	}
	return deleted, moved, nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// eachKey calls fn with every key under prefix, on every node.
func eachKey(ctx context.Context, c valkey.Client, prefix string, fn func(string)) error {
	for _, node := range c.Nodes() {
		var cursor uint64
		for {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return fmt.Errorf("scan %s*: %w", prefix, err)
			}
			for _, k := range e.Elements {
				fn(k)
			}
			if e.Cursor == 0 {
				break
			}
			cursor = e.Cursor
		}
	}
	return nil
}

// countDerived counts the derived keys under prefix.
func countDerived(ctx context.Context, c valkey.Client, prefix string) (int, error) {
	n := 0
	err := eachKey(ctx, c, prefix, func(k string) {
		if strings.HasPrefix(strings.TrimPrefix(k, prefix), "{") {
			n++
		}
	})
	return n, err
}
