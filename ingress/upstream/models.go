package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/geminicodeapi/gca/schemas/gemini"
)

// ErrNoKey is returned by ListModels when no key is available to ask with.
var ErrNoKey = errors.New("no key available to list models")

// ListModels fetches every page of GET /v1beta/models with the given key. Listing
// models spends no generation quota, so any enabled key will do.
func (c *Client) ListModels(ctx context.Context, key string) ([]gemini.Model, error) {
	if key == "" {
		return nil, ErrNoKey
	}
	var all []gemini.Model
	page := ""
	for range 20 {
		u := c.opts.BaseURL + "/" + c.opts.APIVersion + "/models?pageSize=1000"
		if page != "" {
			u += "&pageToken=" + page
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("list models: %w", err)
		}
		req.Header.Set("x-goog-api-key", key)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("list models: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		_ = resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("list models: read body: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			cl := gemini.Classify(resp.StatusCode, body)
			return nil, fmt.Errorf("list models: upstream %d %s: %s", resp.StatusCode, cl.Status, truncate(cl.Message, 200))
		}
		var lm gemini.ListModelsResponse
		if err := json.Unmarshal(body, &lm); err != nil {
			return nil, fmt.Errorf("list models: decode: %w", err)
		}
		all = append(all, lm.Models...)
		if lm.NextPageToken == "" {
			return all, nil
		}
		page = lm.NextPageToken
	}
	return all, nil
}

// CheckKey asks Gemini whether a key works, with countTokens on model: the cheapest
// call there is, spending no generation quota. It returns what the answer means for
// the key (FailureNone when it works).
func (c *Client) CheckKey(ctx context.Context, key, model string) (gemini.Failure, error) {
	u := c.opts.BaseURL + "/" + c.opts.APIVersion + "/models/" + model + ":countTokens"
	body := `{"contents":[{"role":"user","parts":[{"text":"ping"}]}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return gemini.FailureNone, fmt.Errorf("check key: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-goog-api-key", key)
	resp, err := c.http.Do(req)
	if err != nil {
		return gemini.FailureNone, fmt.Errorf("check key: %w", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return gemini.Classify(resp.StatusCode, b).Failure, nil
}
