// Package gateway is the ingress's HTTP surface: the OpenAI, Anthropic and Gemini client
// protocols on one gin engine, the health and metrics endpoints, and the admin API. A
// handler authenticates the client, translates its request to Gemini, hands it to the
// upstream client (key choice and failover live there), translates the answer back,
// and records the request as one event.
//
// Every error a client sees is in its own protocol's shape: OpenAI's
// {"error":{"message","type","param","code"}}, Anthropic's
// {"type":"error","error":{"type","message"}}, Gemini's {"error":{"code","message","status"}}.
package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/geminicodeapi/gca/ingress/cache"
	"github.com/geminicodeapi/gca/ingress/publish"
	"github.com/geminicodeapi/gca/ingress/upstream"
	"github.com/geminicodeapi/gca/internal/health"
	"github.com/geminicodeapi/gca/schemas"
)

// Context keys set on the gin context.
const (
	ctxRequestID = "gca.request_id"
	ctxExchange  = "gca.exchange"
	ctxClient    = "gca.client_type"
)

// Config is the gateway's part of the ingress configuration.
type Config struct {
	// Instance names this ingress process in events.
	Instance string
	// MaxBodyBytes bounds a request body; larger bodies get 413. Default 20 MiB
	// (Gemini's inline-data request limit).
	MaxBodyBytes int64
	// Aliases maps client model names to Gemini models (gpt-4o → gemini-2.5-pro). A
	// key ending in "*" matches by prefix ("claude-sonnet-4*").
	Aliases map[string]string
	// DefaultModel, when set, serves any unknown model name; when empty an unknown
	// model is a 404.
	DefaultModel string
	// ModelsTTL is how long the upstream model list is cached. Default 1 h.
	ModelsTTL time.Duration
	// MaxN caps OpenAI's n (Gemini's candidateCount). Default 8.
	MaxN int
	// CORSOrigins lists the origins browsers may call from; empty means no CORS headers.
	CORSOrigins []string
	// TrustedProxies are the proxies whose X-Forwarded-For is believed; empty means the
	// client address is the TCP peer.
	TrustedProxies []string
	// ResponseCacheSize enables the response cache for identical non-streaming
	// requests when positive (entries). Default 0: off.
	ResponseCacheSize int
	// ResponseCacheTTL is how long a cached answer is served. Default 1 min.
	ResponseCacheTTL time.Duration
}

func (c *Config) defaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 20 << 20
	}
	if c.ModelsTTL <= 0 {
		c.ModelsTTL = time.Hour
	}
	if c.MaxN <= 0 {
		c.MaxN = 8
	}
	if c.ResponseCacheTTL <= 0 {
		c.ResponseCacheTTL = time.Minute
	}
}

// Publisher records events; *publish.Publisher is one.
type Publisher interface {
	Publish(topic string, e publish.Event) error
	// Admit returns an error when a new request must be refused because its event
	// could not be recorded (the spool is full and the policy is reject).
	Admit() error
	Full() bool
	Policy() publish.FullPolicy
}

// Deps are the gateway's collaborators, built by main.
type Deps struct {
	Upstream  *upstream.Client
	Auth      Authenticator
	Publisher Publisher
	Models    *ModelCatalog
	// UpstreamHealth, when set, is reported by readiness as a degraded check.
	UpstreamHealth *UpstreamHealth
	Admin          *Admin
	Checks         *health.Checks
	Registry       *prometheus.Registry
	Logger         *slog.Logger
	Now            func() time.Time
}

// Gateway serves the client protocols.
type Gateway struct {
	cfg       Config
	up        *upstream.Client
	auth      Authenticator
	pub       Publisher
	models    *ModelCatalog
	admin     *Admin
	checks    *health.Checks
	reg       *prometheus.Registry
	log       *slog.Logger
	now       func() time.Time
	metrics   *metrics
	respCache *responseCache
	upHealth  *UpstreamHealth
	engine    *gin.Engine
}

// New builds the gateway and its routes.
func New(cfg Config, d Deps) (*Gateway, error) {
	cfg.defaults()
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Checks == nil {
		d.Checks = &health.Checks{}
	}
	g := &Gateway{
		cfg: cfg, up: d.Upstream, auth: d.Auth, pub: d.Publisher, models: d.Models, admin: d.Admin,
		checks: d.Checks, reg: d.Registry, log: d.Logger.With("component", "gateway"), now: d.Now,
		metrics: newMetrics(d.Registry),
	}
	if d.UpstreamHealth != nil {
		g.upHealth = d.UpstreamHealth
		g.checks.AddDegraded("upstream", d.UpstreamHealth.Check)
	}
	if cfg.ResponseCacheSize > 0 {
		g.respCache = newResponseCache(cfg.ResponseCacheSize, cfg.ResponseCacheTTL, d.Now)
	}
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.HandleMethodNotAllowed = true
	if err := e.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	e.Use(g.requestID, g.recoverPanic, g.cors)
	e.NoRoute(g.noRoute)
	e.NoMethod(g.noRoute)
	g.routes(e)
	g.engine = e
	return g, nil
}

// CacheStats returns the stats of the gateway's own caches (for the admin API and
// metrics).
func (g *Gateway) CacheStats() []cache.Stats {
	out := []cache.Stats{g.models.Stats()}
	if g.upHealth != nil {
		out = append(out, g.upHealth.Stats())
	}
	if g.admin != nil {
		out = append(out, g.admin.keyMetrics.Stats())
	}
	if g.respCache != nil {
		out = append(out, g.respCache.Stats())
	}
	return out
}

// Handler returns the HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.engine }

func (g *Gateway) routes(e *gin.Engine) {
	e.GET("/health/live", gin.WrapH(health.LiveHandler()))
	e.GET("/health/ready", gin.WrapH(g.checks.ReadyHandler(2*time.Second)))
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{Registry: g.reg})))

	oa := e.Group("/v1", g.client(schemas.ClientOpenAI), g.admit)
	oa.POST("/chat/completions", g.openAIChat)
	oa.POST("/embeddings", g.openAIEmbeddings)
	oa.GET("/models", g.openAIModels)
	oa.GET("/models/:model", g.openAIModel)

	an := e.Group("/v1", g.client(schemas.ClientClaude), g.admit)
	an.POST("/messages", g.anthropicMessages)
	an.POST("/messages/count_tokens", g.anthropicCountTokens)

	gm := e.Group("/v1beta", g.client(schemas.ClientGemini), g.admit)
	gm.GET("/models", g.geminiModels)
	gm.GET("/models/:model", g.geminiModel)
	gm.POST("/models/:model", g.geminiCall)

	if g.admin != nil {
		g.admin.routes(e.Group("/admin"))
	}
}

// client tags the request with the protocol its routes speak, so every error, even one
// raised before a handler runs, is written in that protocol's shape.
func (g *Gateway) client(ct string) gin.HandlerFunc {
	return func(c *gin.Context) { c.Set(ctxClient, ct) }
}

// spoolFullRetry is the Retry-After of a request refused because the event spool is
// full: the spool drains within seconds of Kafka's return.
const spoolFullRetry = 5 * time.Second

// admit refuses a client request with 503 (in its protocol's shape, with Retry-After)
// while its event could not be recorded: the spool is full and the policy is reject.
// The refusal is counted and logged by the publisher; it has no event of its own.
func (g *Gateway) admit(c *gin.Context) {
	if err := g.pub.Admit(); err != nil {
		writeSpoolFull(c)
		c.Abort()
		return
	}
	c.Next()
}

func writeSpoolFull(c *gin.Context) {
	writeErrorRetry(c, http.StatusServiceUnavailable, "the gateway cannot record requests right now (its event spool is full); retry later", spoolFullRetry)
}

func clientTypeOf(c *gin.Context) string {
	if ct := c.GetString(ctxClient); ct != "" {
		return ct
	}
	// Before routing (404s): guess from the path.
	p := c.Request.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1beta/"):
		return schemas.ClientGemini
	case strings.HasPrefix(p, "/v1/messages"):
		return schemas.ClientClaude
	case strings.HasPrefix(p, "/v1/"):
		return schemas.ClientOpenAI
	}
	return schemas.ClientUnknown
}

// requestID gives every request an id, echoed in X-Request-Id and recorded in events.
func (g *Gateway) requestID(c *gin.Context) {
	id, err := schemas.NewEventID()
	if err != nil {
		id = fmt.Sprintf("req-%d", g.now().UnixNano())
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	// Anthropic's SDKs read the request id of an error from "request-id".
	c.Header("Request-Id", id)
	c.Next()
}

// recoverPanic turns a handler panic into a 500 in the client's protocol, logs it with
// the stack, counts it, and lets the exchange record the request.
func (g *Gateway) recoverPanic(c *gin.Context) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(r) // net/http's own signal to drop the connection.
		}
		g.metrics.panics.Inc()
		g.log.Error("handler panic", "panic", fmt.Sprint(r), "path", c.Request.URL.Path, "stack", stack())
		x := exchangeOf(c)
		if !c.Writer.Written() {
			writeError(c, http.StatusInternalServerError, "internal error; the request was logged")
		}
		if x != nil {
			x.fail(http.StatusInternalServerError, schemas.ErrInternal, fmt.Sprint(r))
			x.finish()
		}
		c.Abort()
	}()
	c.Next()
}

// cors answers browsers from the configured origins only.
func (g *Gateway) cors(c *gin.Context) {
	origin := c.GetHeader("Origin")
	if origin == "" || len(g.cfg.CORSOrigins) == 0 {
		c.Next()
		return
	}
	allowed := false
	for _, o := range g.cfg.CORSOrigins {
		if o == "*" || o == origin {
			allowed = true
			break
		}
	}
	if !allowed {
		c.Next()
		return
	}
	h := c.Writer.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Vary", "Origin")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, x-api-key, x-goog-api-key, anthropic-version, anthropic-beta, openai-organization")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
	if c.Request.Method == http.MethodOptions {
		c.AbortWithStatus(http.StatusNoContent)
		return
	}
	c.Next()
}

func (g *Gateway) noRoute(c *gin.Context) {
	status := http.StatusNotFound
	msg := "no such endpoint: " + c.Request.Method + " " + truncate(c.Request.URL.Path, 200)
	if c.Writer.Status() == http.StatusMethodNotAllowed {
		status = http.StatusMethodNotAllowed
		msg = "method " + c.Request.Method + " not allowed on " + truncate(c.Request.URL.Path, 200)
	}
	writeError(c, status, msg)
}

// Server returns an http.Server for the gateway with the timeouts a public
// endpoint needs: slow-header and slow-body clients are cut off (slowloris), idle
// keep-alives are bounded; the write timeout is left open because streams last long.
func (g *Gateway) Server(addr string, readTimeout time.Duration) *http.Server {
	// The headers get at most 10 s, and never more than the whole request: with
	// ReadHeaderTimeout set, net/http applies ReadTimeout only after the headers, so a
	// longer header timeout would let a slow-header client outlast the read timeout.
	headerTimeout := 10 * time.Second
	if readTimeout > 0 {
		headerTimeout = min(headerTimeout, readTimeout)
	}
	return &http.Server{
		Addr:              addr,
		Handler:           g.engine,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
