package replay

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/schemas/chddl"
)

// Target says which derived state a replay rebuilds.
type Target uint8

const (
	// TargetValkey is the state the ingress reads: counters, cool-downs, disabled keys,
	// health.
	TargetValkey Target = 1 << iota
	// TargetClickHouse is the tables: request_logs, key_state_log, audit_log and what
	// the materialized views derive from them.
	TargetClickHouse
	// TargetBoth is both.
	TargetBoth = TargetValkey | TargetClickHouse
)

// ParseTarget reads "valkey", "clickhouse" or "both".
func ParseTarget(s string) (Target, error) {
	switch s {
	case "valkey":
		return TargetValkey, nil
	case "clickhouse":
		return TargetClickHouse, nil
	case "both":
		return TargetBoth, nil
	}
	return 0, fmt.Errorf("target %q: want valkey, clickhouse or both", s)
}

func (t Target) String() string {
	switch t {
	case TargetValkey:
		return "valkey"
	case TargetClickHouse:
		return "clickhouse"
	case TargetBoth:
		return "both"
	}
	return fmt.Sprintf("target(%d)", uint8(t))
}

// Has reports whether t includes u.
func (t Target) Has(u Target) bool { return t&u != 0 }

// Into says where a replay writes.
type Into string

const (
	// IntoFresh writes under a new Valkey prefix and into a new ClickHouse database, to
	// be compared with the live state and then switched to (or dropped).
	IntoFresh Into = "fresh"
	// IntoInPlace writes into the live state. It is safe because the sinks are
	// idempotent: an event already applied (Valkey applied mark) or stored (ClickHouse
	// row with its id) is skipped, so only what is missing is added.
	IntoInPlace Into = "inplace"
)

// ParseInto reads "fresh" or "inplace".
func ParseInto(s string) (Into, error) {
	switch Into(s) {
	case IntoFresh, IntoInPlace:
		return Into(s), nil
	}
	return "", fmt.Errorf("into %q: want fresh or inplace", s)
}

// Topics are the topics a replay reads.
type Topics struct {
	Requests string `json:"requests"`
	KeyState string `json:"keystate"`
	Audit    string `json:"audit"`
}

// Resolve maps a topic alias ("requests", "keystate", "audit") or a name to a name.
func (t Topics) Resolve(s string) (string, error) {
	switch s {
	case "requests", t.Requests:
		return t.Requests, nil
	case "keystate", "key_state", t.KeyState:
		return t.KeyState, nil
	case "audit", t.Audit:
		return t.Audit, nil
	}
	return "", fmt.Errorf("topic %q is none of requests, keystate, audit (%s, %s, %s)", s, t.Requests, t.KeyState, t.Audit)
}

// Options configure Run. Brokers, Topics, Target, Into and the clients of the targets
// are required; every other field has a default.
type Options struct {
	// Brokers are the Kafka bootstrap addresses.
	Brokers []string
	Topics  Topics

	// FromBeginning starts every partition at its first record still kept; otherwise
	// From starts it at the first record written to Kafka at or after From (Kafka's
	// record timestamp, the time the ingress published the event). FromOffsets
	// overrides the start of the partitions it names.
	//
	// When the target includes Valkey, the key-state topic is read from its beginning
	// unless FromOffsets names it: a key disabled a month ago is still disabled, so the
	// state depends on the topic's whole history.
	FromBeginning bool
	From          time.Time
	FromOffsets   Offsets

	// The range ends at ToOffsets when set, else at the live ClickHouse consumer
	// group's committed offsets when ToCommitted (what an attach needs: every replayed
	// event was already counted by the live rollups), else at the first record written
	// at or after To, else (zero To) at the high watermarks read when Run starts.
	ToOffsets   Offsets
	ToCommitted bool
	To          time.Time

	Target Target
	Into   Into
	// ID names a fresh replay: its prefix and database derive from it. Default: the
	// start time as YYYYMMDDhhmmss (UTC). Lower-case letters, digits, underscores.
	ID string
	// Now is the writers' clock, fixed for the whole replay: contributions whose keys
	// would have expired by Now are not written. Default: the newest event time of the
	// range (see source.newest), so the result depends on the events alone — or the
	// present, if that event time lies in the future (a fast clock on an ingress host).
	Now time.Time

	// Valkey is the client (TargetValkey). LivePrefix is the live state's prefix;
	// FreshPrefix that of a fresh replay, default "<LivePrefix minus ':'>-replay-<ID>:".
	Valkey      valkey.Client
	LivePrefix  string
	FreshPrefix string

	// ClickHouse is the connection (TargetClickHouse) and Schema the live database's
	// options; a fresh database gets the same options and the name
	// "<Schema.Database>_replay_<ID>".
	ClickHouse chddl.Conn
	Schema     chddl.Options
	// ClickHouseGroup is the live ClickHouse consumer group (ToCommitted, switching);
	// ValkeyGroup the live Valkey one (an offline switch checks it has no member).
	ClickHouseGroup, ValkeyGroup string

	// BatchSize is the events written per sink call. Default 20000.
	BatchSize int
	// Progress receives a report every ProgressInterval (default 2s) and one at the end.
	Progress         func(Progress)
	ProgressInterval time.Duration
	Logger           *slog.Logger
	// KeepOnAbort leaves a fresh replay's prefix and database in place when Run fails
	// or is cancelled; by default they are deleted.
	KeepOnAbort bool
}

// DefaultBatchSize is the events per sink call: large enough that a ClickHouse insert
// and a Valkey pipeline are efficient, small enough to keep memory flat.
const DefaultBatchSize = 20000

var idPattern = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// DefaultID is the id of a fresh replay started at now.
func DefaultID(now time.Time) string { return now.UTC().Format("20060102150405") }

func (o *Options) applyDefaults(now time.Time) {
	if o.ID == "" {
		o.ID = DefaultID(now)
	}
	if o.FreshPrefix == "" {
		o.FreshPrefix = FreshPrefix(o.LivePrefix, o.ID)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.ProgressInterval <= 0 {
		o.ProgressInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// FreshPrefix is the default Valkey prefix of fresh replay id.
func FreshPrefix(live, id string) string {
	return strings.TrimSuffix(live, ":") + "-replay-" + id + ":"
}

// FreshDatabase is the ClickHouse database of fresh replay id.
func FreshDatabase(live, id string) string { return live + "_replay_" + id }

// ReplacedDatabase receives the live tables a switch replaced, for inspection.
func ReplacedDatabase(live, id string) string { return live + "_replaced_" + id }

// Validate reports every problem with the options.
func (o *Options) Validate() error {
	var errs []error
	if len(o.Brokers) == 0 {
		errs = append(errs, errors.New("no kafka brokers"))
	}
	if o.Topics.Requests == "" || o.Topics.KeyState == "" || o.Topics.Audit == "" {
		errs = append(errs, errors.New("topics: requests, keystate and audit are all needed"))
	}
	if o.Target == 0 || o.Target&^TargetBoth != 0 {
		errs = append(errs, fmt.Errorf("target %s: want valkey, clickhouse or both", o.Target))
	}
	if o.Into != IntoFresh && o.Into != IntoInPlace {
		errs = append(errs, fmt.Errorf("into %q: want fresh or inplace", o.Into))
	}
	if !idPattern.MatchString(o.ID) {
		errs = append(errs, fmt.Errorf("id %q must match %s", o.ID, idPattern))
	}
	if o.FromBeginning && !o.From.IsZero() {
		errs = append(errs, errors.New("from: both the beginning and a time"))
	}
	if !o.FromBeginning && o.From.IsZero() && len(o.FromOffsets) == 0 {
		errs = append(errs, errors.New("from: give the beginning, a time or offsets"))
	}
	ends := 0
	for _, set := range []bool{len(o.ToOffsets) > 0, o.ToCommitted, !o.To.IsZero()} {
		if set {
			ends++
		}
	}
	if ends > 1 {
		errs = append(errs, errors.New("to: give at most one of offsets, committed, a time"))
	}
	if !o.From.IsZero() && !o.To.IsZero() && !o.To.After(o.From) {
		errs = append(errs, fmt.Errorf("to %s is not after from %s", o.To.Format(time.RFC3339), o.From.Format(time.RFC3339)))
	}
	if o.Target.Has(TargetValkey) {
		if o.Valkey == nil {
			errs = append(errs, errors.New("target valkey: no valkey client"))
		}
		if o.LivePrefix == "" {
			errs = append(errs, errors.New("target valkey: live prefix is empty"))
		}
		if o.Into == IntoFresh {
			errs = append(errs, checkPrefixes(o.LivePrefix, o.FreshPrefix))
		}
	}
	if o.Target.Has(TargetClickHouse) {
		if o.ClickHouse == nil {
			errs = append(errs, errors.New("target clickhouse: no clickhouse connection"))
		}
		if err := o.Schema.Validate(); err != nil {
			errs = append(errs, err)
		}
		if o.Into == IntoFresh {
			fresh := o.Schema
			fresh.Database = FreshDatabase(o.Schema.Database, o.ID)
			if err := fresh.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("fresh database: %w", err))
			}
		}
	}
	if o.ToCommitted && o.ClickHouseGroup == "" {
		errs = append(errs, errors.New("to committed: no clickhouse consumer group"))
	}
	return errors.Join(errs...)
}

// checkPrefixes refuses a fresh prefix whose keys a SCAN of the live prefix would
// match, or the other way round: a switch deletes the live keys by pattern.
func checkPrefixes(live, fresh string) error {
	switch {
	case fresh == "":
		return errors.New("fresh valkey prefix is empty")
	case strings.ContainsAny(fresh, "{}*?[]\\"):
		return fmt.Errorf("fresh valkey prefix %q holds a glob or hash-tag character", fresh)
	case strings.HasPrefix(fresh, live) || strings.HasPrefix(live, fresh):
		return fmt.Errorf("fresh valkey prefix %q and live prefix %q overlap: one's keys would match the other's pattern", fresh, live)
	}
	return nil
}
