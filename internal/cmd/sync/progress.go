package sync

import (
	"fmt"
	gosync "sync"
	"time"

	"github.com/docora/docora/internal/command"
	"github.com/docora/docora/internal/engine"
	"github.com/docora/docora/internal/store"
)

// progress draws one status line on stderr when it is a terminal; otherwise it is silent.
type progress struct {
	f        *command.Factory
	on       bool
	mu       gosync.Mutex
	last     time.Time
	drawn    bool
	finished int
}

func newProgress(f *command.Factory) *progress {
	return &progress{f: f, on: f.IO.ErrTTY}
}

func (p *progress) detect(l store.LinkView, stage string, done, total int) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond || done == total {
		p.last = now
		p.drawn = true
		fmt.Fprintf(p.f.IO.ErrOut, "\r\033[K%s %s: %s %d/%d", l.Repo.Name, l.AppID, stage, done, total)
	}
}

func (p *progress) done(r engine.Result) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
	p.drawn = true
	fmt.Fprintf(p.f.IO.ErrOut, "\r\033[K%d links done (last: %s %s)", p.finished, r.RepositoryID, r.Outcome)
}

func (p *progress) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.f.IO.ErrOut, "\r\033[K")
		p.drawn = false
	}
}
