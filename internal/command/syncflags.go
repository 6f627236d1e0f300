package command

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/docora/docora/internal/delivery"
)

// SyncFlags are the scheduler and delivery settings shared by `docora sync` and the worker
// of `docora serve`, so both take the same flags with the same defaults and checks.
type SyncFlags struct {
	Interval    time.Duration
	Rescan      time.Duration
	Concurrency int
	EngineOptions
}

// AddSyncFlags registers the flags on fl; helpPrefix starts every help text ("" or "worker: ").
func (s *SyncFlags) AddSyncFlags(fl *pflag.FlagSet, helpPrefix string) {
	h := func(text string) string { return helpPrefix + text }
	watchOnly := ""
	if helpPrefix == "" {
		watchOnly = " (with --watch)"
	}
	fl.DurationVar(&s.Interval, "interval", time.Minute, h("time between passes"+watchOnly))
	fl.DurationVar(&s.Rescan, "rescan-interval", 5*time.Minute, h("re-check synced links this often"+watchOnly))
	fl.IntVar(&s.Concurrency, "concurrency", 5, h("links processed at once"))
	fl.IntVar(&s.Engine.MaxAttempts, "max-attempts", 5, h("delivery attempts per change within a pass"))
	fl.DurationVar(&s.Engine.BackoffBase, "backoff-base", time.Second, h("first retry delay, doubled at each attempt (with jitter)"))
	fl.IntVar(&s.Engine.CircuitThreshold, "circuit-threshold", 5, h("consecutive git failures that pause a repository"))
	fl.DurationVar(&s.Engine.CircuitCooldown, "circuit-cooldown", 30*time.Minute, h("how long an open circuit pauses a repository"))
	fl.DurationVar(&s.Timeout, "timeout", delivery.DefaultTimeout, h("webhook request timeout"))
	fl.Int64Var(&s.ChunkThreshold, "chunk-threshold", delivery.DefaultChunkThreshold, h("files larger than this many bytes are sent in chunks"))
	fl.IntVar(&s.ChunkSize, "chunk-size", delivery.DefaultChunkSize, h("base64 characters per chunk (a multiple of 4)"))
}

// Validate checks the values (usage errors, exit code 2).
func (s *SyncFlags) Validate() error {
	switch {
	case s.Concurrency < 1:
		return Usagef("--concurrency must be at least 1")
	case s.Engine.MaxAttempts < 1:
		return Usagef("--max-attempts must be at least 1")
	case s.Engine.CircuitThreshold < 1:
		return Usagef("--circuit-threshold must be at least 1")
	case s.Interval <= 0 || s.Rescan <= 0 || s.Timeout <= 0 || s.Engine.BackoffBase <= 0 || s.Engine.CircuitCooldown <= 0:
		return Usagef("durations must be positive")
	case s.ChunkThreshold < 1:
		return Usagef("--chunk-threshold must be positive")
	case s.ChunkSize < 4 || s.ChunkSize%4 != 0:
		return Usagef("--chunk-size must be a positive multiple of 4")
	}
	return nil
}
