// Package gemsim simulates the Gemini REST API (v1beta) for tests, demos and benchmarks
// of the gateway: the real wire format, API keys grouped into projects whose quotas
// (RPM, input TPM, RPD with the Pacific-midnight reset) produce the real 429 bodies,
// streaming over SSE and as a JSON array, deterministic answers, tool calls, JSON mode,
// embeddings, injected latency and faults, and a control API under /sim/.
//
// Every answer is a pure function of the request, the config and its seed, and every
// quota window reads the injected clock, so tests can predict bodies and move time
// instead of sleeping.
package gemsim

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // The Pacific day must work on machines without zoneinfo.

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// pacificZone is where the per-day quotas reset, at local midnight.
const pacificZone = "America/Los_Angeles"

// Streams of the seeded generators, so that each choice is reproducible on its own.
const (
	seqJitter uint64 = iota + 1
	seqBare429
	seqResponseID
	seqCallID
	seqSignature
)

// Server is a simulated Gemini API. It is an http.Handler; start it with
// httptest.NewServer in tests or an http.Server in the command.
type Server struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	pacific *time.Location

	models    map[string]*model
	modelList []byte
	keys      *keyring
	faults    *faultBook

	jitter, bare, ids, callIDs, signatures *seq

	bufs sync.Pool
}

// New builds a server from a config that passed Validate; zero fields take their
// defaults. Projects and faults that do not validate are skipped and logged.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:        cfg,
		now:        cfg.Now,
		log:        cfg.Logger,
		models:     make(map[string]*model, len(cfg.Models)),
		faults:     newFaultBook(),
		jitter:     newSeq(cfg.Seed, seqJitter),
		bare:       newSeq(cfg.Seed, seqBare429),
		ids:        newSeq(cfg.Seed, seqResponseID),
		callIDs:    newSeq(cfg.Seed, seqCallID),
		signatures: newSeq(cfg.Seed, seqSignature),
		bufs:       sync.Pool{New: func() any { return new(bytes.Buffer) }},
	}
	loc, err := time.LoadLocation(pacificZone)
	if err != nil {
		// Unreachable with time/tzdata linked in; a fixed PST keeps the server usable.
		s.log.Error("load Pacific time zone, using fixed UTC-8", "err", err)
		loc = time.FixedZone("PST", -8*60*60)
	}
	s.pacific = loc

	list := gemini.ListModelsResponse{Models: make([]gemini.Model, 0, len(cfg.Models))}
	for _, info := range cfg.Models {
		m := newModel(info)
		s.models[m.id] = m
		list.Models = append(list.Models, m.info)
	}
	s.modelList, err = json.Marshal(list)
	if err != nil {
		s.log.Error("encode model list", "err", err)
	}

	s.keys = newKeyring(cfg.Limits)
	for _, p := range cfg.Projects {
		if err := s.keys.add([]ProjectConfig{p}); err != nil {
			s.log.Error("skip project", "project", p.ID, "err", err)
		}
	}
	for _, r := range cfg.Faults {
		if err := s.InjectFault(r); err != nil {
			s.log.Error("skip fault", "err", err)
		}
	}
	return s
}

// route is a parsed Gemini path: /v1beta/models/{model}:{method}.
type route struct {
	version string
	model   string
	method  string
}

// parseRoute reads a Gemini path under /v1beta/ or /v1/.
func parseRoute(path string) (route, bool) {
	var r route
	switch {
	case strings.HasPrefix(path, "/v1beta/"):
		r.version, path = "v1beta", path[len("/v1beta/"):]
	case strings.HasPrefix(path, "/v1/"):
		r.version, path = "v1", path[len("/v1/"):]
	default:
		return r, false
	}
	if path == "models" || path == "models/" {
		r.method = methodListModels
		return r, true
	}
	rest, ok := strings.CutPrefix(path, "models/")
	if !ok || rest == "" {
		return r, false
	}
	name, method, hasMethod := strings.Cut(rest, ":")
	if name == "" || strings.Contains(name, "/") {
		return r, false
	}
	r.model = name
	if !hasMethod {
		r.method = methodGetModel
		return r, true
	}
	switch method {
	case methodGenerate, methodStream, methodCountTokens, methodEmbed, methodBatchEmbed:
		r.method = method
		return r, true
	}
	return r, false
}

// call is the state of one Gemini request while it is served.
type call struct {
	s         *Server
	w         http.ResponseWriter
	r         *http.Request
	query     url.Values
	version   string
	method    string
	modelName string
	model     *model
	key       *keyEntry
	// body holds the request body of a POST, read whole before the call is served.
	body *bytes.Buffer
	// cutAfter is the number of stream chunks after which a fault cuts the connection;
	// -1 when no cut is pending.
	cutAfter int
}

// ServeHTTP routes a request: /sim/ to the control API, everything else to the Gemini
// surface, which authenticates the key, applies queued faults, checks the model and
// serves the method.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/sim/") {
		s.serveControl(w, r)
		return
	}
	rt, ok := parseRoute(r.URL.Path)
	c := &call{s: s, w: w, r: r, version: rt.version, method: rt.method, modelName: rt.model, cutAfter: -1}
	if r.URL.RawQuery != "" {
		c.query = r.URL.Query()
	}
	want := http.MethodPost
	if rt.method == methodListModels || rt.method == methodGetModel {
		want = http.MethodGet
	}
	if !ok || r.Method != want {
		c.writeError(rpcError(http.StatusNotFound, "Method not found."))
		return
	}
	key := r.Header.Get("x-goog-api-key")
	if key == "" {
		key = c.query.Get("key")
	}
	if key == "" {
		c.writeError(errMissingKey())
		return
	}
	if c.key = s.keys.lookup(key); c.key == nil {
		c.writeError(errInvalidKey())
		return
	}
	if c.key.forbidden {
		c.writeError(errForbidden(c.key.project.id))
		return
	}
	if rt.model != "" {
		c.model = s.models[rt.model]
	}
	if r.Method == http.MethodPost {
		ok := c.readBody()
		defer s.putBuf(c.body)
		if !ok {
			return
		}
	}
	if f, ok := s.faults.take(key, c.key.project.id, rt.method); ok && c.applyFault(f) {
		return
	}
	if rt.method == methodListModels {
		c.listModels()
		return
	}
	if c.model == nil || (rt.method != methodGetModel && !c.model.methods[rt.method]) {
		c.writeError(errModelNotFound(c.version, rt.model, rt.method))
		return
	}
	switch rt.method {
	case methodGetModel:
		c.getModel()
	case methodGenerate:
		c.generate(false)
	case methodStream:
		c.generate(true)
	case methodCountTokens:
		c.countTokens()
	case methodEmbed:
		c.embed()
	case methodBatchEmbed:
		c.batchEmbed()
	}
}

// admit checks and consumes the key's project quota for the call's model; on a
// violation it writes the 429 (bare for a seeded share of them) and returns false.
func (c *call) admit(requests, tokens int) bool {
	now := c.s.now()
	p := c.key.project
	vs := p.admit(c.model.id, int64(requests), int64(tokens), now, windowAt(now, c.s.pacific))
	if len(vs) == 0 {
		return true
	}
	if f := c.s.cfg.Bare429Fraction; f > 0 && c.s.bare.float() < f {
		c.writeError(errStatus(http.StatusTooManyRequests))
		return false
	}
	c.writeError(errQuota(vs, c.model.id, p.tier, c.model.embedding()))
	return false
}

// latency waits the configured delay before the first byte, plus seeded jitter. It
// returns false when the client left meanwhile.
func (c *call) latency() bool {
	d := time.Duration(c.s.cfg.Latency)
	if j := time.Duration(c.s.cfg.LatencyJitter); j > 0 {
		d += time.Duration(c.s.jitter.float() * float64(j))
	}
	return c.sleep(d)
}

// sleep waits d or until the client leaves; it reports whether the client is still there.
func (c *call) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.r.Context().Done():
		return false
	}
}

// getBuf takes an empty buffer from the pool.
func (s *Server) getBuf() *bytes.Buffer {
	b := s.bufs.Get().(*bytes.Buffer)
	b.Reset()
	return b
}

// putBuf returns a buffer to the pool unless it grew too large to keep.
func (s *Server) putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		s.bufs.Put(b)
	}
}
