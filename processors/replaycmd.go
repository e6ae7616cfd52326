package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/processors/replay"
)

const replayUsage = `usage: processors replay [flags]            rebuild state from the topics
       processors replay switch -id ID [flags]  make a completed fresh replay live
       processors replay drop -id ID [flags]    delete a fresh replay's prefix and database

Examples:
  # Valkey was flushed: rebuild it in place (marks make it idempotent)
  processors replay -target valkey -into inplace -from beginning
  # rebuild everything into fresh state, compare it with live, and switch to it
  processors replay -target both -into fresh -from beginning -switch
  # request_logs was lost: restore it without counting anything twice in the rollups
  processors replay -target clickhouse -into fresh -from beginning -attach request_logs

See processors/replay/RUNBOOK.md.
`

// replayFlags are the flags of `processors replay` beyond the processors' Config.
type replayFlags struct {
	from, to, target, into, id, freshPrefix, now, attach string
	offsets                                              []string
	doSwitch, keepOnAbort, compare, offline              bool
	batch                                                int
	waitLive                                             time.Duration
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.from, "from", "", `where to start: "beginning", or a time (RFC 3339: the first record written to Kafka at or after it)`)
	fs.Func("offsets", `start offsets of some partitions, "topic:partition=offset,..." (topic: requests, keystate, audit or a name); repeat per topic; partitions not named start at -from (their beginning without it)`, func(v string) error {
		f.offsets = append(f.offsets, v)
		return nil
	})
	fs.StringVar(&f.to, "to", "", `where to end: empty for the high watermarks when the replay starts, a time (RFC 3339), or "committed" (the live ClickHouse consumer's offsets)`)
	fs.StringVar(&f.target, "target", "both", "valkey, clickhouse or both")
	fs.StringVar(&f.into, "into", "fresh", "fresh (a new prefix/database, then compare and -switch) or inplace (idempotent)")
	fs.StringVar(&f.id, "id", "", "name of a fresh replay (default: the start time, YYYYMMDDhhmmss UTC)")
	fs.StringVar(&f.freshPrefix, "valkey-prefix", "", `Valkey prefix of a fresh replay (default "<live prefix minus ':'>-replay-<id>:")`)
	fs.StringVar(&f.now, "now", "", "fixed clock of the writers, RFC 3339 (default: the newest event time in the range)")
	fs.BoolVar(&f.doSwitch, "switch", false, "after a fresh replay completed, switch to it (Valkey: swap keys; ClickHouse: rename tables)")
	fs.StringVar(&f.attach, "attach", "", "ClickHouse: attach these fresh event tables to the live ones instead of swapping (e.g. request_logs); implies -to committed")
	fs.BoolVar(&f.offline, "offline", false, "switch Valkey project by project (no long stall) while the processors' Valkey consumer is stopped")
	fs.BoolVar(&f.keepOnAbort, "keep-on-abort", false, "keep a fresh replay's prefix and database when it fails or is interrupted")
	fs.BoolVar(&f.compare, "compare", true, "after a fresh replay, compare it with the live state and print a summary")
	fs.IntVar(&f.batch, "replay.batch", replay.DefaultBatchSize, "events per sink write")
	fs.DurationVar(&f.waitLive, "wait-live", 2*time.Minute, "how long a ClickHouse switch waits for the live consumer to reach the replay's end")
}

// runReplay is `processors replay [switch|drop] [flags]`.
func runReplay(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	action := "run"
	if len(args) > 0 && (args[0] == "switch" || args[0] == "drop") {
		action, args = args[0], args[1:]
	}
	cfg := DefaultConfig()
	cfg.LoadEnv(getenv)
	fs := flag.NewFlagSet("processors replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f replayFlags
	fs.Usage = func() {
		fmt.Fprint(stderr, replayUsage, "\nflags:\n")
		fs.PrintDefaults()
	}
	cfg.RegisterFlags(fs)
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	opts, err := f.options(&cfg, action)
	if err := errors.Join(err, cfg.Validate()); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(&cfg, stderr)
	opts.Logger = log
	opts.Progress = func(p replay.Progress) { fmt.Fprintln(stderr, p.String()) }
	// A replay is a batch job that decodes every record once: trading memory for fewer
	// collections saved about a fifth of its CPU in BenchmarkReplay.
	debug.SetGCPercent(400)

	closeAll, err := connect(&cfg, &opts)
	if err != nil {
		return err
	}
	defer closeAll()

	switch action {
	case "drop":
		if opts.ID == "" {
			return errors.New("drop: -id is required")
		}
		if err := replay.Drop(ctx, opts); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "replay %s dropped (%s)\n", opts.ID, dropped(opts))
		return nil
	case "switch":
		if opts.ID == "" {
			return errors.New("switch: -id is required")
		}
		return doSwitch(ctx, &cfg, opts, f, stderr)
	}
	st, err := replay.Run(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "replay %s: %d events (%d requests, %d key states, %d audits; %d rejected records skipped) in %s, %.0f events/s, clock %s\n",
		st.ID, st.Events, st.Requests, st.KeyStates, st.Audits, st.Rejected, st.Duration.Round(time.Millisecond), st.EventsPerSecond,
		st.Clock.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(stderr, "  range: from %s\n         to   %s\n", st.Start, st.End)
	if opts.Into == replay.IntoInPlace {
		return nil
	}
	fmt.Fprintf(stderr, "  fresh state: %s\n", dropped(opts))
	if f.compare {
		if err := printComparison(ctx, opts, stderr); err != nil {
			log.Warn("compare the fresh state with the live one", "err", err)
		}
	}
	if !f.doSwitch && f.attach == "" {
		fmt.Fprintf(stderr, "  next: `processors replay switch -id %s -target %s` to make it live, or `processors replay drop -id %s -target %s`\n",
			st.ID, opts.Target, st.ID, opts.Target)
		return nil
	}
	return doSwitch(ctx, &cfg, opts, f, stderr)
}

func dropped(opts replay.Options) string {
	var parts []string
	if opts.Target.Has(replay.TargetValkey) {
		parts = append(parts, "valkey prefix "+opts.FreshPrefix)
	}
	if opts.Target.Has(replay.TargetClickHouse) {
		parts = append(parts, "clickhouse database "+replay.FreshDatabase(opts.Schema.Database, opts.ID))
	}
	return strings.Join(parts, ", ")
}

// options turns the flags into replay options (clients are added by connect).
func (f *replayFlags) options(cfg *Config, action string) (replay.Options, error) {
	topics := replay.Topics{Requests: cfg.TopicRequests, KeyState: cfg.TopicKeyState, Audit: cfg.TopicAudit}
	if f.id == "" && action == "run" {
		f.id = replay.DefaultID(time.Now())
	}
	if f.freshPrefix == "" && f.id != "" {
		f.freshPrefix = replay.FreshPrefix(cfg.ValkeyPrefix, f.id)
	}
	o := replay.Options{
		Brokers: cfg.KafkaBrokers, Topics: topics, ID: f.id, FreshPrefix: f.freshPrefix,
		LivePrefix: cfg.ValkeyPrefix, Schema: cfg.Schema(), ClickHouseGroup: cfg.ClickHouseGroup, ValkeyGroup: cfg.ValkeyGroup,
		BatchSize: f.batch, KeepOnAbort: f.keepOnAbort,
	}
	var errs []error
	var err error
	if o.Target, err = replay.ParseTarget(f.target); err != nil {
		errs = append(errs, err)
	}
	if o.Into, err = replay.ParseInto(f.into); err != nil {
		errs = append(errs, err)
	}
	if f.attach != "" {
		if o.Target != replay.TargetClickHouse || o.Into != replay.IntoFresh {
			errs = append(errs, errors.New("-attach needs -target clickhouse -into fresh"))
		}
		if f.to != "" && f.to != "committed" {
			errs = append(errs, errors.New("-attach replays up to the live consumer's committed offsets: leave -to out"))
		}
		f.to = "committed"
	}
	if f.doSwitch && o.Into != replay.IntoFresh {
		errs = append(errs, errors.New("-switch needs -into fresh"))
	}
	if action != "run" {
		return o, errors.Join(errs...)
	}
	switch f.from {
	case "beginning":
		o.FromBeginning = true
	case "":
	default:
		if o.From, err = time.Parse(time.RFC3339, f.from); err != nil {
			errs = append(errs, fmt.Errorf("-from %q: want beginning or an RFC 3339 time", f.from))
		}
	}
	o.FromOffsets = replay.Offsets{}
	for _, s := range f.offsets {
		off, err := replay.ParseOffsets(s, topics.Resolve)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for t, ps := range off {
			for p, v := range ps {
				o.FromOffsets.Set(t, p, v)
			}
		}
	}
	if f.from == "" && len(f.offsets) == 0 {
		errs = append(errs, errors.New("-from is required (beginning or a time), or -offsets"))
	}
	switch f.to {
	case "":
	case "committed":
		o.ToCommitted = true
	default:
		if o.To, err = time.Parse(time.RFC3339, f.to); err != nil {
			errs = append(errs, fmt.Errorf("-to %q: want committed or an RFC 3339 time", f.to))
		}
	}
	if f.now != "" {
		if o.Now, err = time.Parse(time.RFC3339Nano, f.now); err != nil {
			errs = append(errs, fmt.Errorf("-now %q: want an RFC 3339 time", f.now))
		}
	}
	return o, errors.Join(errs...)
}

// connect opens the clients the targets need and returns what closes them.
func connect(cfg *Config, o *replay.Options) (func(), error) {
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if o.Target.Has(replay.TargetValkey) {
		vk, err := openValkeyTimeout(cfg, 10*time.Minute)
		if err != nil {
			return closeAll, err
		}
		o.Valkey = vk
		closers = append(closers, vk.Close)
	}
	if o.Target.Has(replay.TargetClickHouse) {
		ch, err := openAdminClickHouse(cfg)
		if err != nil {
			closeAll()
			return func() {}, err
		}
		o.ClickHouse = ch
		closers = append(closers, func() { _ = ch.Close() })
	}
	return closeAll, nil
}

func openValkey(cfg *Config) (valkey.Client, error) { return openValkeyTimeout(cfg, 0) }

// openValkeyTimeout opens a client whose commands may take up to timeout (0: the
// client's default, 10s). A switch's script holds Valkey for seconds per million keys.
func openValkeyTimeout(cfg *Config, timeout time.Duration) (valkey.Client, error) {
	c, err := valkey.NewClient(valkey.ClientOption{
		InitAddress:       cfg.ValkeyAddr,
		DisableCache:      true,
		ForceSingleClient: len(cfg.ValkeyAddr) == 1,
		Dialer:            net.Dialer{Timeout: 5 * time.Second},
		ConnWriteTimeout:  timeout,
	})
	if err != nil {
		return nil, fmt.Errorf("connect valkey %v: %w", cfg.ValkeyAddr, err)
	}
	return c, nil
}

// openAdminClickHouse opens a connection for replay: no default database (it works
// in several), and a read timeout long enough for ATTACH and OPTIMIZE of big partitions.
func openAdminClickHouse(cfg *Config) (driver.Conn, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         cfg.ClickHouseAddr,
		Auth:         clickhouse.Auth{Username: cfg.ClickHouseUser, Password: string(cfg.ClickHousePassword)},
		DialTimeout:  5 * time.Second,
		MaxOpenConns: 8,
		// An ATTACH PARTITION or OPTIMIZE ... FINAL of a big partition takes a while.
		ReadTimeout: 10 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse %v: %w", cfg.ClickHouseAddr, err)
	}
	return conn, nil
}

func doSwitch(ctx context.Context, cfg *Config, opts replay.Options, f replayFlags, stderr io.Writer) error {
	so := replay.SwitchOptions{Options: opts, Mode: replay.SwitchSwap, WaitLive: f.waitLive, Offline: f.offline, Actor: "processors replay"}
	if f.attach != "" {
		so.Mode = replay.SwitchAttach
		for _, t := range strings.Split(f.attach, ",") {
			so.AttachTables = append(so.AttachTables, strings.TrimSpace(t))
		}
	}
	aud := replay.NewAuditor(cfg.KafkaBrokers, cfg.TopicAudit, cfg.Instance)
	defer func() { _ = aud.Close() }()
	so.Auditor = aud
	st, err := replay.Switch(ctx, so)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "switched to replay %s in %s: %d events caught up before, %d after\n",
		st.ID, st.Took.Round(time.Millisecond), st.PreCatchUp.Events, st.CatchUp.Events)
	if opts.Target.Has(replay.TargetValkey) {
		fmt.Fprintf(stderr, "  valkey: %d live keys replaced by %d fresh ones under %s\n", st.ValkeyDeleted, st.ValkeyMoved, opts.LivePrefix)
	}
	if len(st.Tables) > 0 {
		fmt.Fprintf(stderr, "  clickhouse: tables %s swapped; the old ones are in %s (drop it with `DROP DATABASE %s` once satisfied)\n",
			strings.Join(st.Tables, ", "), st.Replaced, st.Replaced)
	}
	for t, n := range st.Attached {
		fmt.Fprintf(stderr, "  clickhouse: %d partitions of %s attached and merged\n", n, t)
	}
	return nil
}

// printComparison prints how the fresh state differs from the live one. The live
// state has moved on since the replay's end, so differences in the newest windows are
// expected; `processors check` is the exact comparison.
func printComparison(ctx context.Context, opts replay.Options, w io.Writer) error {
	sum, err := replay.Compare(ctx, opts)
	if err != nil {
		return err
	}
	for _, line := range sum {
		fmt.Fprintln(w, "  "+line)
	}
	return nil
}

// checkFlags are the flags of `processors check`.
type checkFlags struct {
	since     string
	tolerance time.Duration
	rounds    int
	repair    bool
	json      bool
}

// runCheck is `processors check [flags]`.
func runCheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg := DefaultConfig()
	cfg.LoadEnv(getenv)
	fs := flag.NewFlagSet("processors check", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var f checkFlags
	cfg.RegisterFlags(fs)
	fs.StringVar(&f.since, "since", "", "read request events written since this time, RFC 3339 (default: the start of the Pacific day, or 24h back for key health, whichever is earlier)")
	fs.DurationVar(&f.tolerance, "tolerance", time.Second, "how far an expiry may be off")
	fs.IntVar(&f.rounds, "rounds", 3, "how often a differing key is read again before it is reported")
	fs.BoolVar(&f.repair, "repair", false, "write the recomputed state of every differing key and record the repair on the audit topic")
	fs.BoolVar(&f.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var since time.Time
	var err error
	if f.since != "" {
		if since, err = time.Parse(time.RFC3339, f.since); err != nil {
			err = fmt.Errorf("-since %q: want an RFC 3339 time", f.since)
		}
	}
	if err := errors.Join(err, cfg.Validate()); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(&cfg, stdout)
	vk, err := openValkey(&cfg)
	if err != nil {
		return err
	}
	defer vk.Close()
	opts := checkOptions(&cfg, vk, log)
	opts.Since, opts.Tolerance, opts.Rounds = since, f.tolerance, f.rounds
	rep, err := checkAndRepair(ctx, &cfg, opts, f.repair, "processors check", log)
	if err != nil {
		return err
	}
	if f.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReport(stdout, rep)
	}
	if len(rep.Differences) > rep.Repaired {
		return fmt.Errorf("%d differences (run with -repair to fix them)", len(rep.Differences)-rep.Repaired)
	}
	return nil
}

func checkOptions(cfg *Config, vk valkey.Client, log *slog.Logger) replay.CheckOptions {
	return replay.CheckOptions{
		Brokers: cfg.KafkaBrokers,
		Topics:  replay.Topics{Requests: cfg.TopicRequests, KeyState: cfg.TopicKeyState, Audit: cfg.TopicAudit},
		Group:   cfg.ValkeyGroup, Valkey: vk, Prefix: cfg.ValkeyPrefix, Logger: log,
	}
}

// checkAndRepair checks, and with repair fixes what differs and records it as an
// AuditEvent. The CLI and the admin endpoint share it.
func checkAndRepair(ctx context.Context, cfg *Config, opts replay.CheckOptions, repair bool, actor string, log *slog.Logger) (*replay.Report, error) {
	rep, err := replay.Check(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("consistency check: %w", err)
	}
	log.Info("consistency check", "prefix", rep.Prefix, "live_keys", rep.LiveKeys, "differences", len(rep.Differences),
		"explained", len(rep.Explained), "rounds", rep.Rounds, "took", rep.Took)
	if !repair || len(rep.Differences) == 0 {
		return rep, nil
	}
	fixed, rerr := replay.Repair(ctx, opts.Valkey, opts.Prefix, rep)
	result := "ok"
	if rerr != nil {
		result = "partial: " + rerr.Error()
	}
	aud := replay.NewAuditor(cfg.KafkaBrokers, cfg.TopicAudit, cfg.Instance)
	defer func() { _ = aud.Close() }()
	if _, err := aud.Record(ctx, actor, replay.ActionConsistencyRepair, "valkey:"+opts.Prefix, replay.RepairParams(rep), result); err != nil {
		return rep, errors.Join(rerr, fmt.Errorf("record the repair: %w", err))
	}
	log.Info("consistency repair", "prefix", opts.Prefix, "fixed", fixed, "result", result)
	return rep, rerr
}

func printReport(w io.Writer, rep *replay.Report) {
	fmt.Fprintf(w, "consistency check of valkey prefix %q against consumer group %s (%d request events since %s, %d key-state events; %d rounds, %s)\n",
		rep.Prefix, rep.Group, rep.Requests, rep.Since.Format(time.RFC3339), rep.KeyStates, rep.Rounds, rep.Took)
	fmt.Fprintf(w, "  committed: %s\n", rep.Committed)
	fmt.Fprintf(w, "  live keys %d, recomputed keys %d: %d differences, %d explained\n",
		rep.LiveKeys, rep.ExpectedKeys, len(rep.Differences), len(rep.Explained))
	line := func(f replay.Finding) string {
		var ctx []string
		for _, kv := range [][2]string{{"project", f.Project}, {"model", f.Model}, {"key", f.KeyHash}, {"window", f.Window}} {
			if kv[1] != "" {
				ctx = append(ctx, kv[0]+"="+kv[1])
			}
		}
		return fmt.Sprintf("    %-10s %-9s %s [%s] %s", f.Problem, f.Kind, f.Key, strings.Join(ctx, " "), f.Detail)
	}
	for _, f := range rep.Differences {
		fmt.Fprintln(w, line(f))
	}
	for _, f := range rep.Explained {
		fmt.Fprintln(w, line(f)+" — explained: "+f.Explained)
	}
	if rep.Repaired > 0 {
		fmt.Fprintf(w, "  repaired %d keys\n", rep.Repaired)
	}
}
