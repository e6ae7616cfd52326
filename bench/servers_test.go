//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/geminicodeapi/gca/internal/e2e"
	"github.com/geminicodeapi/gca/internal/testenv"
	"github.com/geminicodeapi/gca/simulator/gemsim"
)

// benchModel is the model every part calls.
const benchModel = "gemini-2.5-flash"

// bigLimits are quotas no part reaches, so that the gateway and the simulator run
// every quota check and never refuse. They are non-zero on purpose: zero means
// unlimited and could take a shorter path.
var bigLimits = e2e.Limits{RPM: 1_000_000_000, TPM: 1_000_000_000_000, RPD: 1_000_000_000}

// benchProjects are the pool of parts 1–3: three tier-1 projects with two keys each.
func benchProjects() []gemsim.ProjectConfig { return e2e.DefaultProjects() }

func simLimits(l e2e.Limits) map[string]gemsim.Limits {
	return map[string]gemsim.Limits{benchModel: {RPM: l.RPM, TPM: l.TPM, RPD: l.RPD}}
}

func keyLimits(l e2e.Limits) map[string]map[string]e2e.Limits {
	return map[string]map[string]e2e.Limits{gemsim.TierOne: {"*": l, benchModel: l}}
}

// startSim runs the simulator binary with cfg on the servers' CPUs and returns its
// process; its URL is "http://" + Addr.
func (b *bench) startSim(name string, cfg gemsim.Config) *e2e.Proc {
	b.t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		b.t.Fatalf("encode simulator config: %v", err)
	}
	path := filepath.Join(b.t.TempDir(), name+".json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		b.t.Fatalf("write simulator config: %v", err)
	}
	addr, err := e2e.FreeAddr()
	if err != nil {
		b.t.Fatalf("free port: %v", err)
	}
	p := e2e.NewProc(name, addr, "/sim/healthz", e2e.Pinned(b.layout.Servers, b.bin.Simulator, "-addr", addr, "-config", path), nil)
	b.startProc(p)
	return p
}

// startProc starts p and stops it when the part ends.
func (b *bench) startProc(p *e2e.Proc) {
	b.t.Helper()
	if err := p.Start(60 * time.Second); err != nil {
		b.t.Fatalf("%v", err)
	}
	b.t.Cleanup(func() {
		if p.Running() {
			_, _ = p.Stop(30 * time.Second)
		}
		if b.t.Failed() {
			b.t.Logf("---- %s output ----\n%s", p.Name, tailString(p.Output(), 3000))
		}
	})
}

// gatewayOpts are the e2e options of a gateway in front of an external simulator, on
// the servers' CPUs, with the bench's pool and limits.
func (b *bench) gatewayOpts(simAddr string, projects []gemsim.ProjectConfig, lim e2e.Limits, extraEnv ...string) e2e.Options {
	return e2e.Options{
		Projects:     projects,
		Limits:       keyLimits(lim),
		UpstreamURL:  "http://" + simAddr,
		CPUs:         b.layout.Servers,
		NoProcessors: true,
		Partitions:   12,
		IngressEnv:   append([]string{"GCA_LOG_LEVEL=warn"}, extraEnv...),
	}
}

// startGateway starts an e2e environment (ingresses, their topics and Valkey prefix)
// and the Valkey state consumer that keeps its pending reservations short.
func (b *bench) startGateway(opts e2e.Options) *e2e.Env {
	b.t.Helper()
	env := e2e.Start(b.t, opts)
	b.startStateConsumer(env)
	return env
}

// startStateConsumer runs the Valkey state writer over env's topics as its own
// process (this binary in the state role), unpinned. The processors binary does not
// run it yet; without it every reservation would stay pending for two minutes and the
// reservation script, which reads the pending hash, would slow down as it grows.
func (b *bench) startStateConsumer(env *e2e.Env) *e2e.Proc {
	b.t.Helper()
	self, err := os.Executable()
	if err != nil {
		b.t.Fatalf("locate test binary: %v", err)
	}
	p := e2e.NewProc("state-consumer", "", "", e2e.Pinned(b.layout.All, self, "-test.run=^$"), []string{
		roleEnv + "=" + roleState,
		"GCA_KAFKA_BROKERS=" + strings.Join(testenv.KafkaBrokers(), ","),
		"GCA_VALKEY_ADDR=" + testenv.ValkeyAddr(),
		"GCA_BENCH_TOPICS=" + env.Topics.Requests + "," + env.Topics.KeyState,
		"GCA_BENCH_DEADLETTER=" + env.Topics.DeadLetter,
		"GCA_BENCH_GROUP=" + env.Database + "-vk",
		"GCA_BENCH_PREFIX=" + env.Prefix,
	})
	b.startProc(p)
	return p
}

// startProxy runs the bare reverse proxy (this binary in the proxy role) in front of
// the simulator, on the servers' CPUs.
func (b *bench) startProxy(simAddr string) *e2e.Proc {
	b.t.Helper()
	self, err := os.Executable()
	if err != nil {
		b.t.Fatalf("locate test binary: %v", err)
	}
	addr, err := e2e.FreeAddr()
	if err != nil {
		b.t.Fatalf("free port: %v", err)
	}
	// Ready when a request has made the hop to the simulator and back.
	p := e2e.NewProc("bare-proxy", addr, "/sim/healthz", e2e.Pinned(b.layout.Servers, self, "-test.run=^$"), []string{
		roleEnv + "=" + roleProxy,
		"GCA_BENCH_LISTEN=" + addr,
		"GCA_BENCH_TARGET=http://" + simAddr,
	})
	b.startProc(p)
	return p
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

func mustf(b *bench, err error, format string, args ...any) {
	b.t.Helper()
	if err != nil {
		b.t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}
