package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/geminicodeapi/gca/queries"
	"github.com/geminicodeapi/gca/schemas"
)

// ClickHouse is what the admin queries need of a clickhouse-go connection: run a
// query, execute a storage action.
type ClickHouse interface {
	queries.Conn
	queries.Execer
}

// queryTimeout bounds one admin query or optimization; an OPTIMIZE ... FINAL of a
// day's partition takes seconds, not minutes.
const queryTimeout = 5 * time.Minute

// The analysts' queries and the storage optimizer over the admin API:
//
//	GET  /admin/queries                  the queries and their parameters (JSON)
//	GET  /admin/queries/:name?k=v&format=json|csv|table
//	POST /admin/storage/optimize?execute=true&k=v
//
// Every query-string value but format (and execute) is a query parameter, validated
// and bound by the queries package; unknown names are refused. Without ClickHouse
// configured (GCA_CLICKHOUSE_ADDR) they answer 503.
func (a *Admin) queryRoutes(r *gin.RouterGroup) {
	r.GET("/queries", a.needClickHouse, a.listQueries)
	r.GET("/queries/:name", a.needClickHouse, a.runQuery)
	r.POST("/storage/optimize", a.needClickHouse, a.optimizeStorage)
}

func (a *Admin) needClickHouse(c *gin.Context) {
	if a.d.ClickHouse == nil {
		adminError(c, http.StatusServiceUnavailable, "no ClickHouse configured (set GCA_CLICKHOUSE_ADDR)")
		return
	}
	c.Next()
}

func (a *Admin) listQueries(c *gin.Context) {
	cat, err := queries.Builtin()
	if err != nil {
		adminError(c, http.StatusInternalServerError, err.Error())
		return
	}
	c.JSON(http.StatusOK, gin.H{"queries": cat.List()})
}

// queryParams returns the request's query string as query parameters, without the
// names the endpoint itself reads. A repeated name is refused: which value would win
// is not obvious.
func queryParams(c *gin.Context, own ...string) (map[string]string, error) {
	out := map[string]string{}
	for k, vs := range c.Request.URL.Query() {
		skip := false
		for _, o := range own {
			skip = skip || k == o
		}
		if skip {
			continue
		}
		if len(vs) != 1 {
			return nil, errors.New("parameter " + k + " given more than once")
		}
		out[k] = vs[0]
	}
	return out, nil
}

func (a *Admin) runQuery(c *gin.Context) {
	cat, err := queries.Builtin()
	if err != nil {
		adminError(c, http.StatusInternalServerError, err.Error())
		return
	}
	name := c.Param("name")
	if _, err := cat.Get(name); err != nil {
		adminError(c, http.StatusNotFound, err.Error())
		return
	}
	format, err := queries.ParseFormat(c.DefaultQuery("format", string(queries.FormatJSON)))
	if err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return
	}
	params, err := queryParams(c, "format")
	if err == nil {
		_, err = cat.Render(name, params)
	}
	if err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), queryTimeout)
	defer cancel()
	res, err := cat.Run(ctx, a.d.ClickHouse, name, params)
	if err != nil {
		a.d.Logger.Warn("admin query", "query", name, "err", err)
		adminError(c, http.StatusBadGateway, err.Error())
		return
	}
	var b bytes.Buffer
	if err := res.Write(&b, format); err != nil {
		adminError(c, http.StatusInternalServerError, err.Error())
		return
	}
	c.Data(http.StatusOK, format.ContentType(), b.Bytes())
}

// optimizeStorage lists the storage recommendations, or with execute=true carries them
// out, each action published as an audit event (through the spool, like every event).
// The actor recorded is the X-GCA-Actor header, or the admin API and the client's
// address.
func (a *Admin) optimizeStorage(c *gin.Context) {
	cat, err := queries.Builtin()
	if err != nil {
		adminError(c, http.StatusInternalServerError, err.Error())
		return
	}
	execute, err := strconv.ParseBool(c.DefaultQuery("execute", "false"))
	if err != nil {
		adminError(c, http.StatusBadRequest, "execute must be true or false")
		return
	}
	params, err := queryParams(c, "execute")
	if err == nil {
		_, err = cat.Render("storage_recommendations", params)
	}
	if err != nil {
		adminError(c, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), queryTimeout)
	defer cancel()
	recs, err := cat.Recommendations(ctx, a.d.ClickHouse, params)
	if err != nil {
		adminError(c, http.StatusBadGateway, err.Error())
		return
	}
	if !execute {
		c.JSON(http.StatusOK, gin.H{"executed": false, "recommendations": recs})
		return
	}
	actor := truncate(c.GetHeader("X-GCA-Actor"), 200)
	if actor == "" {
		actor = "admin-api@" + c.ClientIP()
	}
	opt := &queries.Optimizer{Conn: a.d.ClickHouse, Audit: &auditPublisher{a: a}, Actor: actor}
	outcomes, err := opt.Execute(ctx, recs)
	for _, oc := range outcomes {
		r := oc.Recommendation
		a.d.Logger.Info("admin storage action", "action", r.Action, "table", r.Table, "partition", r.PartitionID,
			"result", oc.Audit.Result, "actor", actor, "event_id", oc.Audit.EventID)
	}
	body := gin.H{"executed": true, "outcomes": outcomes}
	if err != nil {
		body["error"] = err.Error()
		c.JSON(http.StatusBadGateway, body)
		return
	}
	c.JSON(http.StatusOK, body)
}

// auditPublisher records audit events through the ingress's publisher.
type auditPublisher struct{ a *Admin }

// auditRecord gives an AuditEvent the record key the publisher needs: its target, as
// the processors' audit writer keys it.
type auditRecord struct{ *schemas.AuditEvent }

func (r auditRecord) RecordKey() string { return r.Target }

func (p *auditPublisher) Record(_ context.Context, actor, action, target string, params map[string]string, result string) (*schemas.AuditEvent, error) {
	id, err := schemas.NewEventID()
	if err != nil {
		return nil, err
	}
	e := &schemas.AuditEvent{
		Type: schemas.TypeAudit, V: schemas.AuditVersion, EventID: id, TimeMs: p.a.d.Now().UnixMilli(),
		Instance: p.a.d.Instance, Actor: actor, Action: action, Target: target, Params: params, Result: result,
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	if err := p.a.d.Publisher.Publish(schemas.TopicAudit, auditRecord{e}); err != nil {
		return nil, err
	}
	return e, nil
}
