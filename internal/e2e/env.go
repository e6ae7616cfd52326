package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valkey-io/valkey-go"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// Options shape an Env. Zero values take the defaults in brackets.
type Options struct {
	// Projects of the simulator and the gateway's keys file [3 tier-1 projects × 2 keys].
	Projects []gemsim.ProjectConfig
	// Sim adjusts the simulator's config (limits, latency, clock, faults).
	Sim func(*gemsim.Config)
	// Limits, when set, is written into the keys file as the tier's limit table, so
	// the gateway's view of quotas matches the simulator's.
	Limits map[string]map[string]Limits
	// Ingresses to start [1].
	Ingresses int
	// AuthMode of the ingresses [gateway].
	AuthMode string
	// IngressEnv and ProcessorsEnv add environment variables ("K=V").
	IngressEnv, ProcessorsEnv []string
	// NoProcessors leaves the processors stopped (tests that start them later).
	NoProcessors bool
	// Partitions per topic [4].
	Partitions int
	// UpstreamURL, when set, is the Gemini API the ingresses call instead of an
	// in-process simulator (Env.Sim is then nil): benchmarks run the simulator as its
	// own process so that it can be pinned to a CPU apart from the load generator.
	UpstreamURL string
	// CPUs, when set, runs the ingresses and the processors under `taskset -c CPUs`
	// (a CPU list such as "1" or "1-3") [unpinned].
	CPUs string
}

// Limits is one row of the keys file's limits table.
type Limits struct {
	RPM int64 `json:"rpm"`
	TPM int64 `json:"tpm"`
	RPD int64 `json:"rpd"`
}

// Topics are an Env's own topic names.
type Topics struct {
	Requests, KeyState, Audit, DeadLetter string
}

// Env is a running gateway.
type Env struct {
	T          testing.TB
	Bin        Binaries
	Topics     Topics
	Database   string
	Prefix     string
	Sim        *gemsim.Server
	SimURL     string
	Dir        string
	KeysFile   string
	TokensFile string
	// Token is a gateway token; AdminToken guards /admin.
	Token      string
	AdminToken string
	Processors *Proc
	Ingress    []*Proc
	CH         driver.Conn
	VK         valkey.Client

	// simHits counts every HTTP request the simulator received, whatever its key or
	// path: what "nothing reached the upstream" is measured with.
	simHits atomic.Int64

	opts Options
}

// DefaultProjects are three tier-1 projects with two keys each.
func DefaultProjects() []gemsim.ProjectConfig {
	var ps []gemsim.ProjectConfig
	for p := 1; p <= 3; p++ {
		pc := gemsim.ProjectConfig{ID: fmt.Sprintf("e2e-p%d", p), Tier: gemsim.TierOne}
		for k := 1; k <= 2; k++ {
			pc.Keys = append(pc.Keys, fmt.Sprintf("AIzaSyE2E-key-p%d-k%d-%s", p, k, strings.Repeat("x", 12)))
		}
		ps = append(ps, pc)
	}
	return ps
}

// Start brings up an Env and registers its teardown with t.
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	bin, err := Build()
	if err != nil {
		t.Fatalf("build binaries: %v", err)
	}
	if opts.Projects == nil {
		opts.Projects = DefaultProjects()
	}
	if opts.Ingresses == 0 {
		opts.Ingresses = 1
	}
	if opts.AuthMode == "" {
		opts.AuthMode = "gateway"
	}
	if opts.Partitions == 0 {
		opts.Partitions = 4
	}
	e := &Env{T: t, Bin: bin, Dir: t.TempDir(), opts: opts}
	e.Topics = Topics{
		Requests:   testenv.Topic(t, "e2e_requests", opts.Partitions),
		KeyState:   testenv.Topic(t, "e2e_keystate", opts.Partitions),
		Audit:      testenv.Topic(t, "e2e_audit", 1),
		DeadLetter: testenv.Topic(t, "e2e_dlq", 1),
	}
	e.CH, e.Database = testenv.ClickHouse(t)
	e.VK, e.Prefix = testenv.Valkey(t)

	if opts.UpstreamURL != "" {
		e.SimURL = opts.UpstreamURL
	} else {
		simCfg := gemsim.Config{Projects: opts.Projects}
		if opts.Sim != nil {
			opts.Sim(&simCfg)
		}
		e.Sim = gemsim.New(simCfg)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			e.simHits.Add(1)
			e.Sim.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		e.SimURL = srv.URL
	}

	e.writeKeysFile(t)
	e.writeTokens(t)

	if !opts.NoProcessors {
		e.Processors = e.NewProcessors()
		if err := e.Processors.Start(60 * time.Second); err != nil {
			t.Fatalf("%v", err)
		}
	}
	for range opts.Ingresses {
		p := e.NewIngress()
		if err := p.Start(60 * time.Second); err != nil {
			t.Fatalf("%v", err)
		}
		e.Ingress = append(e.Ingress, p)
	}
	t.Cleanup(e.stop)
	return e
}

func (e *Env) writeKeysFile(t testing.TB) {
	type key struct {
		Key     string `json:"key"`
		Project string `json:"project"`
		Tier    string `json:"tier,omitempty"`
	}
	var f struct {
		Keys   []key                        `json:"keys"`
		Limits map[string]map[string]Limits `json:"limits,omitempty"`
	}
	for _, p := range e.opts.Projects {
		tier := p.Tier
		if tier == "" {
			tier = gemsim.TierFree
		}
		for _, k := range append(append([]string{}, p.Keys...), p.ForbiddenKeys...) {
			f.Keys = append(f.Keys, key{Key: k, Project: p.ID, Tier: tier})
		}
	}
	f.Limits = e.opts.Limits
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatalf("encode keys file: %v", err)
	}
	e.KeysFile = filepath.Join(e.Dir, "keys.json")
	if err := os.WriteFile(e.KeysFile, b, 0o600); err != nil {
		t.Fatalf("write keys file: %v", err)
	}
}

func (e *Env) writeTokens(t testing.TB) {
	tok, entry, err := access.NewToken("e2e")
	if err != nil {
		t.Fatalf("new token: %v", err)
	}
	b, err := json.Marshal(access.TokenFile{Tokens: []access.Token{entry}})
	if err != nil {
		t.Fatalf("encode tokens: %v", err)
	}
	e.TokensFile = filepath.Join(e.Dir, "tokens.json")
	if err := os.WriteFile(e.TokensFile, b, 0o600); err != nil {
		t.Fatalf("write tokens: %v", err)
	}
	e.Token = tok
	e.AdminToken = "admin-" + strings.Repeat("z", 24)
}

func (e *Env) common() []string {
	return []string{
		"GCA_KAFKA_BROKERS=" + strings.Join(testenv.KafkaBrokers(), ","),
		"GCA_VALKEY_ADDR=" + testenv.ValkeyAddr(),
		"GCA_VALKEY_PREFIX=" + e.Prefix,
		"GCA_TOPIC_REQUESTS=" + e.Topics.Requests,
		"GCA_TOPIC_KEYSTATE=" + e.Topics.KeyState,
		"GCA_TOPIC_AUDIT=" + e.Topics.Audit,
		"GCA_TOPIC_DEADLETTER=" + e.Topics.DeadLetter,
		"GCA_LOG_LEVEL=info",
	}
}

// ProcessorsEnv is the environment of this Env's processors: its topics, database,
// Valkey prefix and consumer groups.
func (e *Env) ProcessorsEnv() []string {
	env := append(e.common(),
		"GCA_CLICKHOUSE_ADDR="+testenv.ClickHouseAddr(),
		"GCA_CLICKHOUSE_DATABASE="+e.Database,
		"GCA_GROUP_CLICKHOUSE="+e.Database+"-ch",
		"GCA_GROUP_VALKEY="+e.Database+"-vk",
		"GCA_BATCH_INTERVAL=50ms",
	)
	return append(env, e.opts.ProcessorsEnv...)
}

// NewProcessors returns a processors process for this Env, not started.
func (e *Env) NewProcessors(extraEnv ...string) *Proc {
	addr, err := FreeAddr()
	if err != nil {
		e.T.Fatalf("free port: %v", err)
	}
	env := append(e.ProcessorsEnv(), "GCA_LISTEN_ADDR="+addr, "GCA_INSTANCE="+e.Database+"-processors")
	return NewProc("processors", addr, readyPath, Pinned(e.opts.CPUs, e.Bin.Processors, "run"), append(env, extraEnv...))
}

// RunProcessors runs a one-shot `processors args...` (replay, check, query) against this
// Env, as an operator would, and returns its output.
func (e *Env) RunProcessors(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.Bin.Processors, args...)
	cmd.Env = append(os.Environ(), append(e.ProcessorsEnv(), "GCA_INSTANCE="+e.Database+"-tool", "GCA_LOG_FORMAT=text", "GCA_LOG_LEVEL=warn")...)
	out, err := cmd.CombinedOutput()
	e.T.Logf("$ processors %s\n%s", strings.Join(args, " "), out)
	return string(out), err
}

// NewIngress returns an ingress process for this Env, not started.
func (e *Env) NewIngress(extraEnv ...string) *Proc {
	addr, err := FreeAddr()
	if err != nil {
		e.T.Fatalf("free port: %v", err)
	}
	n := len(e.Ingress)
	env := append(e.common(),
		"GCA_LISTEN="+addr,
		fmt.Sprintf("GCA_INSTANCE=%s-ingress-%d", e.Database, n),
		"GCA_SPOOL_DIR="+filepath.Join(e.Dir, fmt.Sprintf("spool-%d", n)),
		"GCA_UPSTREAM_URL="+e.SimURL,
		"GCA_KEYS_FILE="+e.KeysFile,
		"GCA_TOKENS_FILE="+e.TokensFile,
		"GCA_AUTH_MODE="+e.opts.AuthMode,
		"GCA_ADMIN_TOKEN="+e.AdminToken,
	)
	env = append(env, e.opts.IngressEnv...)
	return NewProc(fmt.Sprintf("ingress-%d", n), addr, readyPath, Pinned(e.opts.CPUs, e.Bin.Ingress), append(env, extraEnv...))
}

// AddIngress starts one more ingress with extra environment variables ("K=V", added
// after the Env's own), appends it to Ingress and returns it. Each ingress has its own
// spool directory and instance name.
func (e *Env) AddIngress(extraEnv ...string) *Proc {
	e.T.Helper()
	p := e.NewIngress(extraEnv...)
	e.Ingress = append(e.Ingress, p)
	if err := p.Start(60 * time.Second); err != nil {
		e.T.Fatalf("%v", err)
	}
	return p
}

// SimHits returns how many HTTP requests the simulator has received so far, from any
// ingress, on any path (the model list included).
func (e *Env) SimHits() int64 { return e.simHits.Load() }

// URL is the base URL of ingress i.
func (e *Env) URL(i int) string { return "http://" + e.Ingress[i].Addr }

func (e *Env) stop() {
	for _, p := range e.Ingress {
		if p.Running() {
			_, _ = p.Stop(30 * time.Second)
		}
	}
	if e.Processors != nil && e.Processors.Running() {
		_, _ = e.Processors.Stop(30 * time.Second)
	}
	if e.T.Failed() {
		for _, p := range append(e.Ingress, e.Processors) {
			if p != nil {
				e.T.Logf("---- %s output ----\n%s", p.Name, tail(p.Output(), 4000))
			}
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// Count runs a count query (with {db} replaced by the Env's database).
func (e *Env) Count(ctx context.Context, query string) (uint64, error) {
	var n uint64
	err := e.CH.QueryRow(ctx, strings.ReplaceAll(query, "{db}", e.Database)).Scan(&n)
	return n, err
}

// WaitCount polls a count query until it reaches want or the timeout passes, and
// returns the last count.
func (e *Env) WaitCount(query string, want uint64, timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	var n uint64
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err = e.Count(ctx, query)
		cancel()
		if err == nil && n >= want {
			return n, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n, err
}
