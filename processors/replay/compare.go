package replay

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Compare summarizes how a fresh replay's state differs from the live state, one line
// per finding. The live state has moved on since the replay's end (and a switch will
// catch up on that), so differences in the newest windows are expected; Check is the
// exact comparison of the live state with its events.
func Compare(ctx context.Context, opts Options) ([]string, error) {
	opts.applyDefaults(time.Now())
	var out []string
	if opts.Target.Has(TargetValkey) {
		live, err := statesink.NewReader(opts.Valkey, schemas.Keys{Prefix: opts.LivePrefix}).Snapshot(ctx)
		if err != nil {
			return out, fmt.Errorf("read live state: %w", err)
		}
		fresh, err := statesink.NewReader(opts.Valkey, schemas.Keys{Prefix: opts.FreshPrefix}).Snapshot(ctx)
		if err != nil {
			return out, fmt.Errorf("read fresh state: %w", err)
		}
		live, fresh = Derived(live), Derived(fresh)
		diffs := statesink.Diff(fresh, live, time.Second)
		by := map[string]int{}
		for _, d := range diffs {
			f := finding(d)
			by[f.Kind+" "+f.Problem]++
		}
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(by)) {
			parts = append(parts, fmt.Sprintf("%s %d", k, by[k]))
		}
		line := fmt.Sprintf("valkey: fresh %d keys, live %d keys, %d differ", len(fresh), len(live), len(diffs))
		if len(parts) > 0 {
			line += " (" + strings.Join(parts, ", ") + "; \"missing\" is in fresh only, \"unexpected\" in live only)"
		}
		out = append(out, line)
	}
	if opts.Target.Has(TargetClickHouse) {
		fresh := FreshDatabase(opts.Schema.Database, opts.ID)
		for _, q := range []struct{ what, sql string }{
			{"request_logs events", "SELECT toUInt64(uniqExact(id)) FROM %s.request_logs"},
			{"key_state_log events", "SELECT toUInt64(uniqExact(id)) FROM %s.key_state_log"},
			{"audit_log events", "SELECT toUInt64(uniqExact(id)) FROM %s.audit_log"},
			{"system_stats requests", "SELECT toUInt64(sum(total_requests)) FROM %s.system_stats"},
			{"api_key_metrics attempts", "SELECT toUInt64(sum(total_requests)) FROM %s.api_key_metrics"},
		} {
			var n [2]string
			for i, db := range []string{fresh, opts.Schema.Database} {
				n[i] = count(ctx, opts.ClickHouse, fmt.Sprintf(q.sql, quote(db)))
			}
			out = append(out, fmt.Sprintf("clickhouse %s: fresh %s, live %s", q.what, n[0], n[1]))
		}
	}
	return out, nil
}

// count runs a count query; a table that is missing (the incident being repaired) or
// any other error is shown in place of the number.
func count(ctx context.Context, conn chddl.Conn, query string) string {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return "unavailable (" + err.Error() + ")"
	}
	defer rows.Close()
	var n uint64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return "unavailable (" + err.Error() + ")"
	}
	return strconv.FormatUint(n, 10)
}
