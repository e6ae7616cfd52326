package main

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/geminicodeapi/gca/ingress/access"
	"github.com/geminicodeapi/gca/ingress/keypool"
)

func newAuthenticator(cfg Config, pool *keypool.Pool, vkOpts access.Options, log *slog.Logger, reg prometheus.Registerer) (*access.Authenticator, error) {
	vkOpts.Logger, vkOpts.Registerer = log, reg
	a, err := access.New(access.Config{
		Mode: access.Mode(cfg.AuthMode), TokensFile: cfg.TokensFile, AdminToken: access.NewSecret(string(cfg.AdminToken)),
	}, pool, vkOpts)
	if err != nil {
		return nil, fmt.Errorf("access: %w", err)
	}
	return a, nil
}
