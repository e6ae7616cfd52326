package replay

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/processors/statesink"
	"github.com/geminicodeapi/gca/schemas"
	"github.com/geminicodeapi/gca/schemas/chddl"
)

var testTopics = Topics{Requests: "gca.requests.v1", KeyState: "gca.keystate.v1", Audit: "gca.audit.v1"}

func TestParseOffsets(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Offsets
		err  string
	}{
		{in: "requests:0=123,1=456", want: Offsets{"gca.requests.v1": {0: 123, 1: 456}}},
		// A topic may be named by its full name too.
		{in: "gca.keystate.v1:3=0", want: Offsets{"gca.keystate.v1": {3: 0}}},
		{in: "requests", err: "want topic:partition=offset"},
		{in: "nosuch:0=1", err: `topic "nosuch" is none of`},
		{in: "requests:0=-1", err: `"0=-1" is not partition=offset`},
		{in: "requests:a=1", err: `"a=1" is not partition=offset`},
		{in: "requests:0=1,0=2", err: "partition 0 given twice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseOffsets(tc.in, testTopics.Resolve)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
			// String renders what ParseOffsets reads.
			again, err := ParseOffsets(got.String(), testTopics.Resolve)
			require.NoError(t, err)
			require.Equal(t, got, again)
		})
	}
}

func TestOffsetsAtLeast(t *testing.T) {
	have := Offsets{"a": {0: 10, 1: 5}}
	ok, _ := have.AtLeast(Offsets{"a": {0: 10, 1: 4}})
	require.True(t, ok)
	ok, behind := have.AtLeast(Offsets{"a": {0: 11}})
	require.False(t, ok)
	require.Equal(t, "a/0 at 10, want 11", behind)
	ok, _ = have.AtLeast(Offsets{"b": {0: 1}})
	require.False(t, ok, "a partition it does not know is behind")
}

func TestOptionsValidate(t *testing.T) {
	good := func() Options {
		return Options{
			Brokers: []string{"127.0.0.1:9092"}, Topics: testTopics, FromBeginning: true,
			Target: TargetValkey, Into: IntoFresh, ID: "x1", LivePrefix: "gca:", FreshPrefix: "gca-replay-x1:",
			Valkey: fakeValkey{},
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		errs   []string
	}{
		{"good", func(*Options) {}, nil},
		{"nothing", func(o *Options) { *o = Options{} }, []string{"no kafka brokers", "topics:", "target", "into", "id", "from:"}},
		// The switch deletes the live keys by pattern: a fresh prefix under the live
		// one would be deleted with them.
		{"fresh prefix inside live", func(o *Options) { o.FreshPrefix = "gca:replay:" }, []string{"overlap"}},
		{"fresh prefix with a hash tag", func(o *Options) { o.FreshPrefix = "x{y}:" }, []string{"hash-tag"}},
		{"two starts", func(o *Options) { o.From = time.Now() }, []string{"both the beginning and a time"}},
		{"two ends", func(o *Options) { o.ToCommitted, o.To = true, time.Now() }, []string{"at most one", "no clickhouse consumer group"}},
		{"end before start", func(o *Options) {
			o.FromBeginning, o.From, o.To = false, time.Unix(2000, 0), time.Unix(1000, 0)
		}, []string{"is not after from"}},
		{"id not a database name", func(o *Options) { o.ID = "Bad-ID" }, []string{"must match"}},
		{"clickhouse without a connection", func(o *Options) {
			o.Target, o.Schema = TargetClickHouse, chddl.Options{Database: "gca"}
		}, []string{"no clickhouse connection"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.mutate(&o)
			err := o.Validate()
			if tc.errs == nil {
				require.NoError(t, err)
				return
			}
			for _, e := range tc.errs {
				require.ErrorContains(t, err, e)
			}
		})
	}
}

// fakeValkey stands for a client where Validate only checks that there is one.
type fakeValkey struct{ valkey.Client }

func TestNames(t *testing.T) {
	require.Equal(t, "gca-replay-20261125100000:", FreshPrefix("gca:", "20261125100000"))
	require.Equal(t, "gca_replay_7", FreshDatabase("gca", "7"))
	require.Equal(t, "gca_replaced_7", ReplacedDatabase("gca", "7"))
	require.Equal(t, "20261125100000", DefaultID(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)))
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want keyParts
	}{
		{"{p1}:rpm:gemini-2.5-flash:29377190", keyParts{Project: "p1", Kind: "rpm", Model: "gemini-2.5-flash", Window: "2025-11-08T19:50:00Z"}},
		{"{p1}:rpd:gemini-2.5-pro:20261125", keyParts{Project: "p1", Kind: "rpd", Model: "gemini-2.5-pro", Window: "20261125"}},
		{"{p1}:cooldown:gemini-2.5-pro", keyParts{Project: "p1", Kind: "cooldown", Model: "gemini-2.5-pro"}},
		{"{p1}:health:abc", keyParts{Project: "p1", Kind: "health", KeyHash: "abc"}},
		{"token:{t}:rpm:1", keyParts{Kind: "other"}},
	} {
		require.Equal(t, tc.want, parseKey(tc.key), tc.key)
	}
}

func TestDerived(t *testing.T) {
	in := map[string]Value{
		"{p}:rpm:m:1":     {Type: "string", String: "1"},
		"{p}:applied:e1":  {Type: "string", String: "1"},
		"{p}:pending:m":   {Type: "hash"},
		"token:{t}:rpm:1": {Type: "string", String: "3"},
		"{p}:blacklist:k": {Type: "string", String: "{}"},
		"replay":          {Type: "string"},
	}
	require.Equal(t, map[string]Value{"{p}:rpm:m:1": in["{p}:rpm:m:1"], "{p}:blacklist:k": in["{p}:blacklist:k"]}, Derived(in))
}

// Value is statesink.Value, shortened for the tables.
type Value = statesink.Value

func TestBetween(t *testing.T) {
	c := func(n string, exp int64) *Value { return &Value{Type: "string", String: n, ExpireAtMs: exp} }
	h := func(kv ...string) *Value {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return &Value{Type: "hash", Hash: m, ExpireAtMs: 5000}
	}
	for _, tc := range []struct {
		name        string
		lo, got, hi *Value
		want        bool
	}{
		{"equal to the committed state", c("3", 1000), c("3", 1000), c("5", 1000), true},
		{"equal to the newest state", c("3", 1000), c("5", 1000), c("5", 1000), true},
		// A batch in flight has been applied in part of its projects.
		{"counter in between", c("3", 1000), c("4", 1000), c("5", 1000), true},
		{"counter above", c("3", 1000), c("6", 1000), c("5", 1000), false},
		{"counter below", c("3", 1000), c("2", 1000), c("5", 1000), false},
		{"expiry off", c("3", 1000), c("4", 9000), c("5", 1000), false},
		{"created by events after the committed offsets", nil, c("2", 1000), c("5", 1000), true},
		{"missing but expected at both ends", c("3", 1000), nil, c("5", 1000), false},
		{"missing, deleted by a newer event", c("3", 1000), nil, nil, true},
		{"health sums in between", h("lat_n", "2", "ok_ms", "10"), h("lat_n", "3", "ok_ms", "12"), h("lat_n", "4", "ok_ms", "12"), true},
		{"health fail kind from neither end", h("fail_kind", "timeout"), h("fail_kind", "network"), h("fail_kind", "upstream"), false},
		{"a non-numeric value is never in between", &Value{Type: "string", String: `{"a":1}`}, &Value{Type: "string", String: `{"a":2}`}, &Value{Type: "string", String: `{"a":3}`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, between(tc.lo, tc.got, tc.hi, 1000))
		})
	}
}

func TestDefaultSince(t *testing.T) {
	la := schemas.Pacific()
	// Midday: 24h of health reaches back further than the Pacific day's start.
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, la)
	require.Equal(t, now.Add(-24*time.Hour-10*time.Minute), DefaultSince(now))
	// Half past midnight: yesterday's day counter lives until 01:00, and its day
	// started 24.5 hours ago.
	now = time.Date(2026, 11, 25, 0, 30, 0, 0, la)
	require.Equal(t, time.Date(2026, 11, 24, 0, 0, 0, 0, la).Add(-10*time.Minute), DefaultSince(now))
}

func TestRepairArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Finding
		want []string
	}{
		{"unexpected key deleted", Finding{Key: "{p}:cooldown:m", Kind: "cooldown", Got: &Value{Type: "string"}}, []string{"del", "0"}},
		// Counters move by the difference, so increments made since the check stay.
		{"counter too high", Finding{Key: "{p}:rpd:m:1", Kind: "rpd", Want: &Value{Type: "string", String: "11", ExpireAtMs: 99}, Got: &Value{Type: "string", String: "16"}},
			[]string{"incr", "99", "-5"}},
		{"counter missing", Finding{Key: "{p}:rpm:m:1", Kind: "rpm", Want: &Value{Type: "string", String: "4", ExpireAtMs: 99}}, []string{"incr", "99", "4"}},
		{"cool-down missing", Finding{Key: "{p}:cooldown:m", Kind: "cooldown", Want: &Value{Type: "string", String: "{}", ExpireAtMs: 99}}, []string{"set", "99", "{}"}},
		{"disabled key, no expiry", Finding{Key: "{p}:blacklist:k", Kind: "blacklist", Want: &Value{Type: "string", String: "{}"}}, []string{"set", "0", "{}"}},
		{"health replaced", Finding{Key: "{p}:health:k", Kind: "health", Want: &Value{Type: "hash", Hash: map[string]string{"ok_ms": "5", "lat_n": "1"}, ExpireAtMs: 7}},
			[]string{"hash", "7", "lat_n", "1", "ok_ms", "5"}},
		{"failures replaced", Finding{Key: "{p}:fails:k", Kind: "fails", Want: &Value{Type: "zset", ZSet: map[string]float64{"e#0": 1700000000000}, ExpireAtMs: 7}},
			[]string{"zset", "7", "1700000000000", "e#0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := repairArgs(tc.f)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestProgressString(t *testing.T) {
	p := Progress{Phase: "replay", Done: 250_000, Total: 1_000_000, Events: 250_000, Elapsed: 2 * time.Second, Rate: 125_000, ETA: 6 * time.Second}
	require.Equal(t, "replay: 250,000 of 1,000,000 records (25.0%), 125,000 events/s, 750,000 left, ETA 6s", p.String())
	p.Final, p.Done, p.Events = true, 1_000_000, 999_990
	require.Equal(t, "replay: done, 1,000,000 records (999,990 events) in 2s, 125,000 events/s", p.String())
}
