package statesink

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Valkey types of the state's keys, as TYPE names them.
const (
	TypeString = "string"
	TypeHash   = "hash"
	TypeZSet   = "zset"
)

// Value is one key of the state: its type, its value in the field for that type, and
// its absolute expiry.
type Value struct {
	Type   string
	String string            `json:",omitempty"`
	Hash   map[string]string `json:",omitempty"`
	// ZSet maps member to score.
	ZSet map[string]float64 `json:",omitempty"`
	// ExpireAtMs is the Unix millisecond the key expires at; 0 when it has none.
	ExpireAtMs int64 `json:",omitempty"`
}

// snapshotPage bounds the keys read per pipelined round.
const snapshotPage = 1000

// Snapshot returns every key of the given projects (all projects when none is given)
// with its type, value and expiry, keyed without the prefix ("{p}:rpm:m:29000000"), so
// live state and state a replay rebuilt under another prefix compare directly. The
// applied marks are included; drop them with WithoutMarks when comparing state built
// from different event ranges. Keys that expire while the scan runs are left out.
func (r *Reader) Snapshot(ctx context.Context, projects ...string) (map[string]Value, error) {
	globs := []string{r.keys.AllGlob()}
	if len(projects) > 0 {
		globs = globs[:0]
		for _, p := range projects {
			globs = append(globs, r.keys.ProjectGlob(p))
		}
	}
	found := map[string]struct{}{}
	// A cluster client's Nodes are the primaries; SCAN one by one. A standalone client
	// is its only node.
	for _, node := range r.client.Nodes() {
		for _, g := range globs {
			if err := scan(ctx, node, g, func(k string) { found[k] = struct{}{} }); err != nil {
				return nil, err
			}
		}
	}
	keys := slices.Sorted(maps.Keys(found))
	out := make(map[string]Value, len(keys))
	for len(keys) > 0 {
		n := min(len(keys), snapshotPage)
		if err := r.readValues(ctx, keys[:n], out); err != nil {
			return nil, err
		}
		keys = keys[n:]
	}
	return out, nil
}

func scan(ctx context.Context, c valkey.Client, glob string, fn func(string)) error {
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(glob).Count(1000).Build()).AsScanEntry()
		if err != nil {
			return fmt.Errorf("scan %s: %w", glob, err)
		}
		for _, k := range e.Elements {
			fn(k)
		}
		if e.Cursor == 0 {
			return nil
		}
		cursor = e.Cursor
	}
}

// readValues reads type and expiry of keys in one round, then their values in another.
func (r *Reader) readValues(ctx context.Context, keys []string, out map[string]Value) error {
	cmds := make(valkey.Commands, 0, 2*len(keys))
	for _, k := range keys {
		cmds = append(cmds, r.client.B().Type().Key(k).Build(), r.client.B().Pexpiretime().Key(k).Build())
	}
	res := r.client.DoMulti(ctx, cmds...)
	vals := make([]Value, len(keys))
	cmds = cmds[:0]
	var idx []int
	for i, k := range keys {
		typ, err := res[2*i].ToString()
		if err != nil {
			return fmt.Errorf("type of %s: %w", k, err)
		}
		exp, err := res[2*i+1].AsInt64()
		if err != nil {
			return fmt.Errorf("expiry of %s: %w", k, err)
		}
		switch typ {
		case "none":
			continue // expired or deleted since the scan
		case TypeString:
			cmds = append(cmds, r.client.B().Get().Key(k).Build())
		case TypeHash:
			cmds = append(cmds, r.client.B().Hgetall().Key(k).Build())
		case TypeZSet:
			cmds = append(cmds, r.client.B().Zrange().Key(k).Min("0").Max("-1").Withscores().Build())
		default:
			return fmt.Errorf("key %s has type %s, which the state never uses", k, typ)
		}
		vals[i] = Value{Type: typ, ExpireAtMs: max(exp, 0)}
		idx = append(idx, i)
	}
	res = r.client.DoMulti(ctx, cmds...)
	for j, i := range idx {
		v, k := vals[i], keys[i]
		var err error
		switch v.Type {
		case TypeString:
			v.String, err = res[j].ToString()
		case TypeHash:
			v.Hash, err = res[j].AsStrMap()
		case TypeZSet:
			var zs []valkey.ZScore
			zs, err = res[j].AsZScores()
			v.ZSet = make(map[string]float64, len(zs))
			for _, z := range zs {
				v.ZSet[z.Member] = z.Score
			}
		}
		if valkey.IsValkeyNil(err) || (err == nil && v.Type != TypeString && len(v.Hash)+len(v.ZSet) == 0) {
			continue // gone between the two rounds
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		out[strings.TrimPrefix(k, r.keys.Prefix)] = v
	}
	return nil
}

// WithoutMarks returns the derived state alone: without the applied marks (the
// bookkeeping of exactly-once counting) and without the ingress's pending reservations
// (requests in flight, which no event describes yet).
func WithoutMarks(state map[string]Value) map[string]Value {
	out := make(map[string]Value, len(state))
	for k, v := range state {
		if !strings.Contains(k, "}:applied:") && !strings.Contains(k, "}:pending:") {
			out[k] = v
		}
	}
	return out
}

// Difference is a key whose state differs between what was expected and what is there.
type Difference struct {
	Key string
	// Want and Got are nil when the key is missing on that side.
	Want, Got *Value
	Reason    string
}

func (d Difference) String() string { return d.Key + ": " + d.Reason }

// Diff compares two states key by key. Expiries may differ by up to tolerance (live
// state and a rebuild are written at different moments only when a rule depends on the
// clock; zero demands equality). The result is sorted by key.
func Diff(want, got map[string]Value, tolerance time.Duration) []Difference {
	var out []Difference
	for _, k := range slices.Sorted(maps.Keys(want)) {
		w := want[k]
		g, ok := got[k]
		if !ok {
			out = append(out, Difference{Key: k, Want: &w, Reason: "missing"})
			continue
		}
		if reason := compare(w, g, tolerance); reason != "" {
			out = append(out, Difference{Key: k, Want: &w, Got: &g, Reason: reason})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			g := got[k]
			out = append(out, Difference{Key: k, Got: &g, Reason: "unexpected"})
		}
	}
	return out
}

func compare(w, g Value, tolerance time.Duration) string {
	switch {
	case w.Type != g.Type:
		return fmt.Sprintf("type %s, want %s", g.Type, w.Type)
	case w.String != g.String:
		return fmt.Sprintf("value %q, want %q", g.String, w.String)
	case !maps.Equal(w.Hash, g.Hash):
		return fmt.Sprintf("hash %v, want %v", g.Hash, w.Hash)
	case !maps.Equal(w.ZSet, g.ZSet):
		return fmt.Sprintf("zset %v, want %v", g.ZSet, w.ZSet)
	case (w.ExpireAtMs == 0) != (g.ExpireAtMs == 0) ||
		abs(w.ExpireAtMs-g.ExpireAtMs) > tolerance.Milliseconds():
		return "expires at " + expiry(g.ExpireAtMs) + ", want " + expiry(w.ExpireAtMs)
	}
	return ""
}

func expiry(ms int64) string {
	if ms == 0 {
		return "never"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) + " (" + strconv.FormatInt(ms, 10) + ")"
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
