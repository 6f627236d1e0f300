package cli

import (
	"context"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/delivery"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/github"
	"github.com/docora/docora/internal/gitsource"
	"github.com/docora/docora/internal/registry"
)

// wire sets the factory's service constructors.
func wire(f *command.Factory) {
	f.Engine = func(ctx context.Context, o command.EngineOptions) (*engine.Engine, error) {
		st, err := f.Store(ctx)
		if err != nil {
			return nil, err
		}
		client, err := delivery.NewClient(delivery.ClientOptions{Version: f.Build.Version, Timeout: o.Timeout,
			ChunkThreshold: o.ChunkThreshold, ChunkSize: o.ChunkSize})
		if err != nil {
			return nil, command.Usagef("%v", err)
		}
		return &engine.Engine{
			Store:   st,
			Git:     gitsource.Open(f.Config.CacheDir),
			Client:  client,
			Policy:  f.Policy(),
			Logger:  f.Logger(),
			Options: o.Engine,
		}, nil
	}
	f.Registry = func(ctx context.Context) (*registry.Service, error) {
		st, err := f.Store(ctx)
		if err != nil {
			return nil, err
		}
		v, err := github.NewVerifier(f.Config.GitHubAPIURL, nil, gitsource.BranchLister{Policy: f.Policy()})
		if err != nil {
			return nil, err
		}
		return &registry.Service{
			Store:     st,
			Verifier:  v,
			Caches:    gitsource.Open(f.Config.CacheDir),
			GitHubURL: f.Config.GitHubURL,
			Policy:    f.Policy(),
			Logger:    f.Logger(),
		}, nil
	}
}
