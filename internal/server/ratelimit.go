package server

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a token bucket per client address. Buckets idle for longer than it takes them to
// refill are forgotten, so the map stays as small as the set of recently active clients.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time
	idle  time.Duration

	mu        sync.Mutex
	clients   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxClients bounds the map between sweeps (a flood of spoofed addresses cannot grow it
// without bound: when full, idle buckets are swept at once).
const maxClients = 100_000

func newLimiter(perSecond float64, burst int, now func() time.Time) *limiter {
	refill := time.Duration(float64(burst) / perSecond * float64(time.Second))
	return &limiter{rate: rate.Limit(perSecond), burst: burst, now: now, idle: max(refill, time.Minute),
		clients: map[string]*bucket{}, lastSweep: now()}
}

// allow takes one token from key's bucket; when there is none it reports how long until
// there will be.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > l.idle || len(l.clients) >= maxClients {
		l.sweep(now)
	}
	b := l.clients[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.clients[key] = b
	}
	b.seen = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

func (l *limiter) sweep(now time.Time) {
	for k, b := range l.clients {
		if now.Sub(b.seen) > l.idle {
			delete(l.clients, k)
		}
	}
	if len(l.clients) >= maxClients {
		// Every bucket is recent: a flood of addresses. Starting over is lenient for a
		// moment but keeps memory and the cost of a sweep bounded.
		l.clients = map[string]*bucket{}
	}
	l.lastSweep = now
}
