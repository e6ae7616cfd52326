// Package chddl holds the ClickHouse schema of the project as ordered .sql migrations,
// embedded in the binary, and applies them idempotently (Migrate), recording each in a
// schema_migrations table.
//
// The migrations are text/template files rendered for the server they are applied to:
//
//   - Current ClickHouse (20.x and later; users deploy 25.x/26.x) gets the idiomatic
//     schema: DateTime64(3, 'UTC') timestamps, LowCardinality, TTL retention, a bloom
//     filter skipping index.
//   - ClickHouse 18.16 (the local Debian server) gets the same tables, columns and
//     sorting keys with DateTime('UTC') timestamps (whole seconds, the seed's own
//     precision; durations are separate millisecond columns, and every quota window —
//     minute, Pacific day — starts on a whole second, so nothing is lost that a window
//     needs) and no TTL: processors/retention drops expired daily partitions instead.
//     LowCardinality is used on both; 18.16 accepts it when the server profile sets
//     allow_experimental_low_cardinality_type=1 (a client must not send that setting:
//     current servers reject it).
//   - With Options.Cluster set, every statement runs ON CLUSTER, storage tables become
//     <name>_local with Replicated* engines, and <name> is a Distributed table over them,
//     sharded so that all copies of one event land on one shard (ReplacingMergeTree can
//     only collapse duplicates it holds). Materialized views read and write the local
//     tables; the finalizing views read the Distributed ones. Single node is the default
//     and the tested path; the cluster rendering is covered by unit tests.
//
// Template functions available in migrations:
//
//	{{table "t"}}        `db`.`t`: what clients query (Distributed on a cluster)
//	{{local "t"}}        `db`.`t_local` on a cluster, else `db`.`t`: where rows are stored
//	{{onCluster}}        " ON CLUSTER `c`" or ""
//	{{engine "E" "t"}}   E, or ReplicatedE('/clickhouse/tables/{shard}/db/t_local', '{replica}')
//	{{distributed "t" "key"}}  a CREATE TABLE of the Distributed table t, or "" on one node
//	{{global}}           "GLOBAL " on a cluster (JOINs whose left side is Distributed)
//	{{datetime}}         DateTime64(3, 'UTC') or DateTime('UTC')
//	{{lc "T"}}           LowCardinality(T)
//	{{lcFromView "T"}}   LowCardinality(T), or T on 18.16 for columns a view computes
//	{{ttl "expr" days}}  TTL expr + INTERVAL days DAY on current servers, "" on 18.16 or days = 0
//	{{jsonString "e"}}   a SQL expression that renders the String e as a JSON string
//	.Modern              true on current servers (20.x and later)
package chddl

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Version is a ClickHouse server version.
type Version struct {
	Major, Minor, Patch int
}

// Modern reports whether the server has DateTime64 and TTL (20.1 and later).
func (v Version) Modern() bool { return v.Major >= 20 }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Versions the project is tested against.
var (
	// Legacy is the Debian server the local stack runs.
	Legacy = Version{18, 16, 1}
	// Current is the engine libchdb ships, as users deploy it.
	Current = Version{26, 7, 0}
)

// ParseVersion reads what SELECT version() returns, e.g. "18.16.1" or "26.7.2.1".
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("clickhouse version %q: want major.minor[.patch]", s)
	}
	var n [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return Version{}, fmt.Errorf("clickhouse version %q: %w", s, err)
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, nil
}

// Options select what is rendered.
type Options struct {
	// Database holds every table. Default "gca".
	Database string
	// Cluster is the name of a cluster in the servers' remote_servers config; empty
	// (the default) means a single node.
	Cluster string
	// RetentionDays is how long request_logs, error_logs, key_state_log and
	// api_key_failures keep rows. 0 keeps them forever. Default 30.
	RetentionDays int
	// StatsRetentionDays is how long system_stats keeps its daily rows. 0 keeps them
	// forever. Default 730.
	StatsRetentionDays int
}

// Default retention.
const (
	DefaultDatabase           = "gca"
	DefaultRetentionDays      = 30
	DefaultStatsRetentionDays = 730
)

var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Validate reports every problem with the options.
func (o Options) Validate() error {
	var errs []error
	if !identPattern.MatchString(o.Database) {
		errs = append(errs, fmt.Errorf("clickhouse database %q must match %s", o.Database, identPattern))
	}
	if o.Cluster != "" && !identPattern.MatchString(o.Cluster) {
		errs = append(errs, fmt.Errorf("clickhouse cluster %q must match %s", o.Cluster, identPattern))
	}
	if o.RetentionDays < 0 {
		errs = append(errs, fmt.Errorf("retention days %d is negative", o.RetentionDays))
	}
	if o.StatsRetentionDays < 0 {
		errs = append(errs, fmt.Errorf("stats retention days %d is negative", o.StatsRetentionDays))
	}
	if o.StatsRetentionDays != 0 && o.RetentionDays != 0 && o.StatsRetentionDays < o.RetentionDays {
		errs = append(errs, fmt.Errorf("stats retention (%d days) is shorter than log retention (%d days)", o.StatsRetentionDays, o.RetentionDays))
	}
	return errors.Join(errs...)
}

// Migration is one rendered migration file.
type Migration struct {
	// Version orders migrations; it is the file name's numeric prefix.
	Version int
	Name    string
	// Checksum is the SHA-256 of the template text (not of the rendering, which varies
	// with the server and the options), so an edited migration is detected.
	Checksum   string
	Statements []string
}

// Render renders every migration for a server version and options.
func Render(v Version, opts Options) ([]Migration, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	files, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(files)
	out := make([]Migration, 0, len(files))
	seen := map[int]string{}
	for _, f := range files {
		m, err := renderFile(f, v, opts)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[m.Version]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, f, m.Version)
		}
		seen[m.Version] = f
		out = append(out, m)
	}
	return out, nil
}

func renderFile(file string, v Version, opts Options) (Migration, error) {
	base := strings.TrimSuffix(path.Base(file), ".sql")
	num, name, ok := strings.Cut(base, "_")
	version, err := strconv.Atoi(num)
	if !ok || err != nil {
		return Migration{}, fmt.Errorf("migration %s: name must be NNNN_name.sql", file)
	}
	src, err := migrationFiles.ReadFile(file)
	if err != nil {
		return Migration{}, fmt.Errorf("read migration %s: %w", file, err)
	}
	tmpl, err := template.New(base).Option("missingkey=error").Funcs(funcs(v, opts)).Parse(string(src))
	if err != nil {
		return Migration{}, fmt.Errorf("parse migration %s: %w", file, err)
	}
	var buf bytes.Buffer
	data := struct {
		Modern             bool
		RetentionDays      int
		StatsRetentionDays int
	}{v.Modern(), opts.RetentionDays, opts.StatsRetentionDays}
	if err := tmpl.Execute(&buf, data); err != nil {
		return Migration{}, fmt.Errorf("render migration %s: %w", file, err)
	}
	sum := sha256.Sum256(src)
	return Migration{
		Version:    version,
		Name:       name,
		Checksum:   hex.EncodeToString(sum[:]),
		Statements: SplitStatements(buf.String()),
	}, nil
}

func quote(ident string) string { return "`" + ident + "`" }

func funcs(v Version, opts Options) template.FuncMap {
	db := quote(opts.Database)
	cluster := opts.Cluster != ""
	localName := func(t string) string {
		if cluster {
			return t + "_local"
		}
		return t
	}
	onCluster := ""
	if cluster {
		onCluster = " ON CLUSTER " + quote(opts.Cluster)
	}
	return template.FuncMap{
		"table":     func(t string) string { return db + "." + quote(t) },
		"local":     func(t string) string { return db + "." + quote(localName(t)) },
		"onCluster": func() string { return onCluster },
		"global": func() string {
			if cluster {
				return "GLOBAL "
			}
			return ""
		},
		"engine": func(engine, t string) string {
			if !cluster {
				return engine
			}
			return fmt.Sprintf("Replicated%s('/clickhouse/tables/{shard}/%s/%s', '{replica}')", engine, opts.Database, localName(t))
		},
		"distributed": func(t, shardingKey string) string {
			if !cluster {
				return ""
			}
			return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s%s AS %s.%s\nENGINE = Distributed(%s, %s, %s, %s)",
				db, quote(t), onCluster, db, quote(localName(t)),
				quote(opts.Cluster), quote(opts.Database), quote(localName(t)), shardingKey)
		},
		"datetime": func() string { return datetime(v) },
		"lc":       func(t string) string { return "LowCardinality(" + t + ")" },
		// A column a materialized view fills with a computed String: 18.16 does not
		// convert String to LowCardinality in a view's INSERT, and toLowCardinality()
		// there costs about 2 s per 10k rows, so 18.16 keeps it a String. Current
		// servers convert on their own.
		"lcFromView": func(t string) string {
			if v.Modern() {
				return "LowCardinality(" + t + ")"
			}
			return t
		},
		"ttl": func(expr string, days int) string {
			if !v.Modern() || days <= 0 {
				return ""
			}
			return fmt.Sprintf("TTL %s + INTERVAL %d DAY", expr, days)
		},
		// The same escaping on every version (toJSONString would be idiomatic on current
		// servers, but it escapes '/' and would make the two renderings disagree).
		"jsonString": func(expr string) string {
			return `concat('"', replaceAll(replaceAll(replaceAll(replaceAll(replaceAll(` + expr +
				`, '\\', '\\\\'), '"', '\\"'), '\n', '\\n'), '\r', '\\r'), '\t', '\\t'), '"')`
		},
	}
}

// SplitStatements splits SQL text into statements at semicolons outside quotes and
// comments, and drops statements that hold nothing but whitespace and comments.
func SplitStatements(sql string) []string {
	var (
		out   []string
		start int
		i     int
	)
	flush := func(end int) {
		stmt := strings.TrimSpace(sql[start:end])
		if hasCode(stmt) {
			out = append(out, stmt)
		}
		start = end + 1
	}
	for i < len(sql) {
		switch c := sql[i]; {
		case c == '\'' || c == '"' || c == '`':
			i = skipQuoted(sql, i)
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			continue
		case c == ';':
			flush(i)
		}
		i++
	}
	if start < len(sql) {
		flush(len(sql))
	}
	return out
}

// skipQuoted returns the index after the quoted string that starts at i; backslash
// escapes the next character, as in ClickHouse.
func skipQuoted(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i + 1
		}
	}
	return i
}

// hasCode reports whether a statement holds anything besides comments and whitespace.
func hasCode(stmt string) bool {
	for _, line := range strings.Split(stmt, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "--") {
			return true
		}
	}
	return false
}
