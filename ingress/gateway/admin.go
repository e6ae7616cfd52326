package gateway

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/ingress/cache"
	"github.com/geminicodeapi/gca/ingress/keypool"
	"github.com/geminicodeapi/gca/schemas"
)

// AdminAuth checks the admin token; *access.Authenticator is one.
type AdminAuth interface {
	CheckAdmin(r *http.Request, clientIP string) error
}

// KeyFileEditor adds and removes keys in the operator's keys file and reloads the pool
// from it; main provides it when a keys file is configured.
type KeyFileEditor interface {
	AddKey(k keypool.KeyConfig) (hash string, err error)
	RemoveKey(hash string) error
}

// AdminDeps are what the admin API works with.
type AdminDeps struct {
	Auth      AdminAuth
	Pool      *keypool.Pool
	Publisher Publisher
	KeysFile  KeyFileEditor
	Caches    func() []cache.Stats
	Spool     func() (pendingBytes int64, full bool)
	// ClickHouse runs the analysts' queries and the storage optimizer
	// (admin_queries.go); nil when none is configured.
	ClickHouse ClickHouse
	Instance   string
	Logger     *slog.Logger
	Now        func() time.Time
}

// Admin is the operator's API under /admin, guarded by the admin token. Every change
// it makes is published as a key-state event (never written to Valkey directly), so
// the processors apply it and a replay of the topic reproduces it.
type Admin struct {
	d AdminDeps
	// keyMetrics is the seed's key-metrics cache: the per-key summary, 10 minutes.
	keyMetrics *cache.Cache[[]keypool.KeyState]
}

// NewAdmin returns the admin API.
func NewAdmin(d AdminDeps) *Admin {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	d.Logger = d.Logger.With("component", "admin")
	return &Admin{d: d, keyMetrics: cache.New[[]keypool.KeyState]("key_metrics", 1, 10*time.Minute, d.Now)}
}

func (a *Admin) routes(r *gin.RouterGroup) {
	r.Use(a.guard)
	r.GET("/keys", a.listKeys)
	r.GET("/keys/metrics", a.keyMetricsSummary)
	r.POST("/keys", a.addKey)
	r.DELETE("/keys/:hash", a.removeKey)
	r.POST("/keys/:hash/disable", a.disableKey)
	r.POST("/keys/:hash/enable", a.enableKey)
	r.DELETE("/cooldowns/:project/:model", a.clearCooldown)
	r.GET("/blacklist/stats", a.blacklistStats)
	r.GET("/caches", a.caches)
	r.GET("/spool", a.spool)
	a.queryRoutes(r)
}

func adminError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": gin.H{"code": status, "message": msg}})
}

// guard refuses every admin call without the admin token.
func (a *Admin) guard(c *gin.Context) {
	if err := a.d.Auth.CheckAdmin(c.Request, c.ClientIP()); err != nil {
		var ae *access.Error
		status := http.StatusUnauthorized
		if errors.As(err, &ae) {
			status = ae.Status
		}
		adminError(c, status, err.Error())
		return
	}
	c.Next()
}

func (a *Admin) listKeys(c *gin.Context) {
	states, err := a.d.Pool.KeyStates(c.Request.Context())
	if err != nil {
		// The config part is still useful while Valkey is away.
		c.JSON(http.StatusOK, gin.H{"keys": a.d.Pool.Keys(), "live_state_error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"keys": states})
}

// keyMetricsSummary serves the keys' state from a cache refreshed at most every 10
// minutes (?refresh=1 forces it): for dashboards that poll, where /admin/keys is the
// live view for an operator.
func (a *Admin) keyMetricsSummary(c *gin.Context) {
	const key = "all"
	states, ok := a.keyMetrics.Get(key)
	if !ok || c.Query("refresh") == "1" {
		var err error
		states, err = a.d.Pool.KeyStates(c.Request.Context())
		if err != nil {
			adminError(c, http.StatusServiceUnavailable, "read live state: "+err.Error())
			return
		}
		a.keyMetrics.Set(key, states)
	}
	c.JSON(http.StatusOK, gin.H{"keys": states, "cache": a.keyMetrics.Stats()})
}

// publishKeyState records an operator's change to a key or pair.
func (a *Admin) publishKeyState(c *gin.Context, e *schemas.KeyStateEvent) bool {
	id, err := schemas.NewEventID()
	if err != nil {
		adminError(c, http.StatusInternalServerError, err.Error())
		return false
	}
	e.Type, e.V, e.EventID, e.TimeMs, e.Instance = schemas.TypeKeyState, schemas.KeyStateVersion, id, a.d.Now().UnixMilli(), a.d.Instance
	e.Source = schemas.SourceAdmin
	if e.Reason == "" {
		e.Reason = schemas.ReasonOperator
	}
	if err := e.Validate(); err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return false
	}
	if err := a.d.Publisher.Publish(schemas.TopicKeyState, e); err != nil {
		adminError(c, http.StatusServiceUnavailable, "record the change: "+err.Error())
		return false
	}
	a.d.Logger.Info("admin key state change", "kind", e.Kind, "key_id", e.KeyHash, "project", e.Project, "model", e.Model, "event_id", e.EventID)
	return true
}

func (a *Admin) keyOr404(c *gin.Context) *keypool.Key {
	k := a.d.Pool.Key(c.Param("hash"))
	if k == nil {
		adminError(c, http.StatusNotFound, "no configured key with that hash")
	}
	return k
}

func (a *Admin) disableKey(c *gin.Context) {
	k := a.keyOr404(c)
	if k == nil {
		return
	}
	var body struct {
		Message string `json:"message"`
	}
	_ = c.ShouldBindJSON(&body)
	if a.publishKeyState(c, &schemas.KeyStateEvent{Kind: schemas.KindDisable, KeyHash: k.Hash(), Project: k.Project(), Message: truncate(body.Message, 300)}) {
		c.JSON(http.StatusAccepted, gin.H{"key": k.Hash(), "state": "disabling", "note": "applied by the processors within a second"})
	}
}

func (a *Admin) enableKey(c *gin.Context) {
	k := a.keyOr404(c)
	if k == nil {
		return
	}
	if a.publishKeyState(c, &schemas.KeyStateEvent{Kind: schemas.KindEnable, KeyHash: k.Hash(), Project: k.Project()}) {
		a.d.Pool.MarkEnabled(k.Hash())
		c.JSON(http.StatusAccepted, gin.H{"key": k.Hash(), "state": "enabling"})
	}
}

func (a *Admin) clearCooldown(c *gin.Context) {
	project, model := c.Param("project"), c.Param("model")
	if schemas.ValidateProject(project) != nil || !modelPattern.MatchString(model) {
		adminError(c, http.StatusBadRequest, "malformed project or model")
		return
	}
	if a.publishKeyState(c, &schemas.KeyStateEvent{Kind: schemas.KindClearCooldown, Project: project, Model: model}) {
		// This instance's own cool-down of the pair (from a 429 it saw) would
		// otherwise hold until its end; other replicas follow Valkey's entry.
		a.d.Pool.ClearCooldown(project, model)
		c.JSON(http.StatusAccepted, gin.H{"project": project, "model": model, "state": "clearing"})
	}
}

func (a *Admin) addKey(c *gin.Context) {
	if a.d.KeysFile == nil {
		adminError(c, http.StatusConflict, "no keys file is configured; keys come from the environment only")
		return
	}
	var kc keypool.KeyConfig
	if err := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10)).Decode(&kc); err != nil {
		adminError(c, http.StatusBadRequest, "body must be a key object: "+err.Error())
		return
	}
	hash, err := a.d.KeysFile.AddKey(kc)
	if err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return
	}
	c.JSON(http.StatusCreated, gin.H{"key": hash})
}

func (a *Admin) removeKey(c *gin.Context) {
	if a.d.KeysFile == nil {
		adminError(c, http.StatusConflict, "no keys file is configured; keys come from the environment only")
		return
	}
	if k := a.keyOr404(c); k == nil {
		return
	}
	if err := a.d.KeysFile.RemoveKey(c.Param("hash")); err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"key": c.Param("hash"), "state": "removed"})
}

// BlacklistStats is the seed's getBlacklistStats: active entries, by reason and model.
// Expired entries are not counted: Valkey removes them at their TTL.
type BlacklistStats struct {
	ActiveEntries     int            `json:"activeEntries"`
	DisabledKeys      int            `json:"disabledKeys"`
	CoolingPairs      int            `json:"coolingPairs"`
	ByReason          map[string]int `json:"byReason"`
	ByModel           map[string]int `json:"byModel"`
	EarliestExpiresAt *time.Time     `json:"earliestExpiresAt,omitempty"`
}

func (a *Admin) blacklistStats(c *gin.Context) {
	states, err := a.d.Pool.KeyStates(c.Request.Context())
	if err != nil {
		adminError(c, http.StatusServiceUnavailable, "read live state: "+err.Error())
		return
	}
	st := BlacklistStats{ByReason: map[string]int{}, ByModel: map[string]int{}}
	seenPair := map[string]bool{}
	for _, s := range states {
		if s.Disabled != nil {
			st.DisabledKeys++
			st.ByReason[s.Disabled.Reason]++
		}
		for _, q := range s.Quotas {
			pair := s.Project + "/" + q.Model
			if q.CooldownUntil.IsZero() || seenPair[pair] {
				continue
			}
			seenPair[pair] = true
			st.CoolingPairs++
			st.ByReason[q.CooldownReason]++
			st.ByModel[q.Model]++
			if st.EarliestExpiresAt == nil || q.CooldownUntil.Before(*st.EarliestExpiresAt) {
				t := q.CooldownUntil
				st.EarliestExpiresAt = &t
			}
		}
	}
	st.ActiveEntries = st.DisabledKeys + st.CoolingPairs
	c.JSON(http.StatusOK, st)
}

func (a *Admin) caches(c *gin.Context) {
	var out []cache.Stats
	if a.d.Caches != nil {
		out = a.d.Caches()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	c.JSON(http.StatusOK, gin.H{"caches": out})
}

func (a *Admin) spool(c *gin.Context) {
	if a.d.Spool == nil {
		adminError(c, http.StatusNotFound, "no spool")
		return
	}
	pending, full := a.d.Spool()
	c.JSON(http.StatusOK, gin.H{"pending_bytes": pending, "full": full})
}
