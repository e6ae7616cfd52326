// Package retention enforces the ClickHouse retention on servers without TTL. Current
// ClickHouse drops expired rows itself (the TTL clauses schemas/chddl renders); 18.16 has
// no TTL, so this job drops the daily (or monthly) partitions whose every row is older
// than the configured number of days, with ALTER TABLE ... DROP PARTITION.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Table is a table with partitions by day (toYYYYMMDD) or month (toYYYYMM).
type Table struct {
	Name    string
	Monthly bool
	// Stats selects Options.StatsRetentionDays instead of RetentionDays.
	Stats bool
}

// Tables are the tables with retention, as partitioned in schemas/chddl. audit_log is
// kept forever; api_key_metrics_state holds lifetime totals.
var Tables = []Table{
	{Name: "request_logs"},
	{Name: "error_logs"},
	{Name: "api_key_failures"},
	{Name: "key_state_log", Monthly: true},
	{Name: "system_stats_daily", Monthly: true, Stats: true},
}

// Job drops expired partitions.
type Job struct {
	conn    chddl.Conn
	opts    chddl.Options
	version chddl.Version
	log     *slog.Logger
	now     func() time.Time
}

// New returns a job for the database the options name on a server of version v.
func New(conn chddl.Conn, v chddl.Version, opts chddl.Options, log *slog.Logger, now func() time.Time) *Job {
	return &Job{conn: conn, opts: opts, version: v, log: log, now: now}
}

// Needed reports whether the server needs the job (it has no TTL).
func (j *Job) Needed() bool { return !j.version.Modern() }

// Run drops expired partitions now and then every interval until ctx ends. Errors are
// logged and retried at the next interval.
func (j *Job) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := j.Once(ctx); err != nil && ctx.Err() == nil {
			j.log.Warn("retention: drop expired partitions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once drops every expired partition and returns them as "table/partition_id".
func (j *Job) Once(ctx context.Context) ([]string, error) {
	var dropped []string
	for _, t := range Tables {
		days := j.opts.RetentionDays
		if t.Stats {
			days = j.opts.StatsRetentionDays
		}
		if days <= 0 {
			continue
		}
		name := t.Name
		if j.opts.Cluster != "" {
			name += "_local"
		}
		ids, err := j.partitions(ctx, name)
		if err != nil {
			return dropped, err
		}
		for _, id := range ids {
			drop, err := expired(id, t.Monthly, days, j.now())
			if err != nil {
				j.log.Warn("retention: unexpected partition id", "table", name, "partition", id, "err", err)
				continue
			}
			if !drop {
				continue
			}
			q := fmt.Sprintf("ALTER TABLE `%s`.`%s`%s DROP PARTITION ID '%s'", j.opts.Database, name, onCluster(j.opts), id)
			if err := j.conn.Exec(ctx, q); err != nil {
				return dropped, fmt.Errorf("drop partition %s of %s.%s: %w", id, j.opts.Database, name, err)
			}
			j.log.Info("retention: dropped expired partition", "table", name, "partition", id, "retention_days", days)
			dropped = append(dropped, name+"/"+id)
		}
	}
	return dropped, nil
}

func onCluster(o chddl.Options) string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER `" + o.Cluster + "`"
}

func (j *Job) partitions(ctx context.Context, table string) ([]string, error) {
	rows, err := j.conn.Query(ctx, fmt.Sprintf(
		"SELECT DISTINCT partition_id FROM system.parts WHERE database = '%s' AND table = '%s' AND active ORDER BY partition_id",
		j.opts.Database, table))
	if err != nil {
		return nil, fmt.Errorf("list partitions of %s.%s: %w", j.opts.Database, table, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("list partitions of %s.%s: %w", j.opts.Database, table, err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// expired reports whether every row of a partition (a UTC day YYYYMMDD, or a month
// YYYYMM) is older than days at now: the partition's end is days old.
func expired(id string, monthly bool, days int, now time.Time) (bool, error) {
	layout, next := "20060102", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }
	if monthly {
		layout, next = "200601", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }
	}
	start, err := time.Parse(layout, id)
	if err != nil {
		return false, err
	}
	return !next(start).AddDate(0, 0, days).After(now), nil
}
