package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/geminicodeapi/gca/processors/replay"
	"github.com/geminicodeapi/gca/queries"
)

// The analyst and operator tools: the named queries of queries/, and the storage
// optimizer that carries out what storage_recommendations advises. They use the
// processors' configuration (flags and GCA_* variables) for ClickHouse and, to record
// an executed optimization, for Kafka's audit topic.
const toolUsage = `usage:
  processors query list [--format table|csv|json]
  processors query run NAME [--param name=value]... [--format table|csv|json]
  processors query sql NAME [--param name=value]...
  processors storage optimize [--execute] [--actor WHO] [--param name=value]... [--format table|csv|json]

  query list        the queries, their parameters (name type=default) and what they answer
  query run         run a query; unknown parameters and invalid values are refused
  query sql         print the SQL with the parameters bound as literals (paste it into
                    clickhouse-client; runs on 18.16 and current servers alike)
  storage optimize  list what storage_recommendations advises (partitions past retention to
                    drop, partitions with too many parts to merge); with --execute carry it
                    out, each action recorded as an audit event on the audit topic.
                    retention_days and stats_retention_days default to -retention.days and
                    -retention.stats-days.

Every flag of 'processors run' is accepted too (-clickhouse.addr, -clickhouse.database, ...).
`

// isTool reports whether a command is one of the tools rather than a service command.
func isTool(cmd string) bool { return cmd == "query" || cmd == "storage" }

// paramFlag collects repeated --param name=value.
type paramFlag map[string]string

func (p paramFlag) String() string { return "" }

func (p paramFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("--param %q: want name=value", v)
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("--param %s given twice", k)
	}
	p[k] = val
	return nil
}

// parseInterleaved parses flags that may come before, between and after positional
// arguments (the flag package stops at the first positional one).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// runTool runs `processors query ...` or `processors storage ...`; results go to stdout.
func runTool(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, args := args[0], args[1:]
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	cfg := DefaultConfig()
	cfg.LoadEnv(getenv)
	fs := flag.NewFlagSet("processors "+cmd+" "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, toolUsage) }
	cfg.RegisterFlags(fs)
	params := paramFlag{}
	fs.Var(params, "param", "a query parameter, name=value (repeat for several)")
	formatName := fs.String("format", "table", "output format: table, csv or json")
	execute := fs.Bool("execute", false, "storage optimize: carry the recommendations out (default: list them only)")
	actor := fs.String("actor", defaultActor(getenv), "storage optimize: who asks, recorded in the audit events")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	format, err := queries.ParseFormat(*formatName)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	cat, err := queries.Builtin()
	if err != nil {
		return err
	}
	want := func(n int) error {
		if len(pos) != n {
			fmt.Fprint(stderr, toolUsage)
			return fmt.Errorf("%s %s: want %d argument(s), got %q", cmd, sub, n, pos)
		}
		return nil
	}
	switch cmd + " " + sub {
	case "query list":
		if err := want(0); err != nil {
			return err
		}
		return listQueries(cat).Write(stdout, format)
	case "query sql":
		if err := want(1); err != nil {
			return err
		}
		sql, err := cat.Render(pos[0], params)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, sql)
		return err
	case "query run":
		if err := want(1); err != nil {
			return err
		}
		if _, err := cat.Get(pos[0]); err != nil {
			return err
		}
		conn, err := openQueryConn(&cfg)
		if err != nil {
			return err
		}
		defer closeQuietly(conn, stderr)
		res, err := cat.Run(ctx, conn, pos[0], params)
		if err != nil {
			return err
		}
		return res.Write(stdout, format)
	case "storage optimize":
		if err := want(0); err != nil {
			return err
		}
		conn, err := openQueryConn(&cfg)
		if err != nil {
			return err
		}
		defer closeQuietly(conn, stderr)
		storageDefaults(&cfg, params)
		if !*execute {
			res, err := cat.Run(ctx, conn, "storage_recommendations", params)
			if err != nil {
				return err
			}
			fmt.Fprintln(stderr, "dry run: nothing was changed; pass --execute to carry these out")
			return res.Write(stdout, format)
		}
		auditor := replay.NewAuditor(cfg.KafkaBrokers, cfg.TopicAudit, cfg.Instance)
		defer closeQuietly(auditor, stderr)
		outcomes, err := optimizeStorage(ctx, cat, conn, auditor, &cfg, *actor, params)
		if werr := outcomeResult(outcomes).Write(stdout, format); werr != nil && err == nil {
			err = werr
		}
		return err
	}
	fmt.Fprint(stderr, toolUsage)
	return fmt.Errorf("unknown command %q", strings.TrimSpace(cmd+" "+sub))
}

func defaultActor(getenv func(string) string) string {
	user := getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	return "cli:" + user + "@" + host
}

// storageDefaults fills the retention parameters from the configuration, so the
// recommendations follow the retention the processors enforce.
func storageDefaults(cfg *Config, params map[string]string) {
	defaults := map[string]string{
		"retention_days":       strconv.Itoa(cfg.RetentionDays),
		"stats_retention_days": strconv.Itoa(cfg.StatsRetentionDays),
		"database":             cfg.ClickHouseDatabase,
	}
	for k, v := range defaults {
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
}

// optimizeStorage runs storage_recommendations and executes them.
func optimizeStorage(ctx context.Context, cat *queries.Catalog, conn driver.Conn, audit queries.Recorder, cfg *Config, actor string, params map[string]string) ([]queries.Outcome, error) {
	recs, err := cat.Recommendations(ctx, conn, params)
	if err != nil {
		return nil, err
	}
	opt := &queries.Optimizer{Conn: conn, Audit: audit, Actor: actor, Cluster: cfg.ClickHouseCluster}
	return opt.Execute(ctx, recs)
}

// autoOptimize executes the storage recommendations every interval until ctx ends. It
// runs only when GCA_STORAGE_AUTO_OPTIMIZE is set: dropping partitions is an operator's
// decision unless the operator made it once for all.
func autoOptimize(ctx context.Context, cfg *Config, conn driver.Conn, log *slog.Logger) {
	log = log.With("component", "storage_optimizer")
	cat, err := queries.Builtin()
	if err != nil {
		log.Error("storage auto-optimize disabled", "err", err)
		return
	}
	auditor := replay.NewAuditor(cfg.KafkaBrokers, cfg.TopicAudit, cfg.Instance)
	defer func() {
		if err := auditor.Close(); err != nil {
			log.Warn("close audit writer", "err", err)
		}
	}()
	t := time.NewTicker(cfg.RetentionInterval)
	defer t.Stop()
	for {
		params := map[string]string{}
		storageDefaults(cfg, params)
		outcomes, err := optimizeStorage(ctx, cat, conn, auditor, cfg, "processors:auto-optimize@"+cfg.Instance, params)
		for _, oc := range outcomes {
			r := oc.Recommendation
			log.Info("storage action", "action", r.Action, "table", r.Table, "partition", r.PartitionID, "result", oc.Audit.Result)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn("storage auto-optimize", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func openQueryConn(cfg *Config) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        cfg.ClickHouseAddr,
		Auth:        clickhouse.Auth{Database: cfg.ClickHouseDatabase, Username: cfg.ClickHouseUser, Password: string(cfg.ClickHousePassword)},
		DialTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", cfg.ClickHouseAddr, err)
	}
	return conn, nil
}

func closeQuietly(c io.Closer, stderr io.Writer) {
	if err := c.Close(); err != nil {
		fmt.Fprintln(stderr, "close:", err)
	}
}

// listQueries describes the catalog as a result, so it prints in every format.
func listQueries(cat *queries.Catalog) *queries.Result {
	res := &queries.Result{Query: "list", Columns: []queries.Column{{Name: "name", Type: "String"}, {Name: "parameters", Type: "String"}, {Name: "summary", Type: "String"}}}
	for _, q := range cat.List() {
		var ps []string
		for _, p := range q.Params {
			def := p.Default
			if def == "" {
				def = "''"
			}
			ps = append(ps, p.Name+" "+p.Type.String()+"="+def)
		}
		res.Rows = append(res.Rows, []any{q.Name, strings.Join(ps, ", "), q.Summary})
	}
	return res
}

// outcomeResult shows what an executed optimization did.
func outcomeResult(outcomes []queries.Outcome) *queries.Result {
	res := &queries.Result{Query: "storage optimize", Columns: []queries.Column{
		{Name: "action", Type: "String"}, {Name: "table_name", Type: "String"}, {Name: "partition_id", Type: "String"},
		{Name: "statement", Type: "String"}, {Name: "result", Type: "String"}, {Name: "audit_event_id", Type: "String"},
	}}
	for _, oc := range outcomes {
		r := oc.Recommendation
		res.Rows = append(res.Rows, []any{r.Action, r.Table, r.PartitionID, oc.Statement, oc.Audit.Result, oc.Audit.EventID})
	}
	return res
}
