package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Measurement is one process run: wall time and the peak resident set size of the process
// and of the descendants it waited for (ru_maxrss of wait4).
type Measurement struct {
	Wall   time.Duration
	MaxRSS int64 // bytes
}

// Command describes a process to run and measure.
type Command struct {
	Args   []string
	Dir    string
	Env    []string // added to the environment
	Stdout io.Writer
}

// Run runs c and measures it; a failure includes its standard error.
func Run(ctx context.Context, c Command) (Measurement, error) {
	cmd := exec.CommandContext(ctx, c.Args[0], c.Args[1:]...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdout = c.Stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	m := Measurement{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			m.MaxRSS = ru.Maxrss * 1024 // Linux reports KiB
		}
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w\n%s", strings.Join(c.Args, " "), err, tail(stderr.String(), 2000))
	}
	return m, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// Stats summarises repeated measurements.
type Stats struct {
	Runs        int
	Median, Min time.Duration
	MaxRSS      int64 // the largest peak RSS of all runs
	MedianRSS   int64
	Samples     []time.Duration
}

// Summarise returns the statistics of ms.
func Summarise(ms []Measurement) Stats {
	s := Stats{Runs: len(ms)}
	if len(ms) == 0 {
		return s
	}
	walls := make([]time.Duration, len(ms))
	rss := make([]int64, len(ms))
	for i, m := range ms {
		walls[i], rss[i] = m.Wall, m.MaxRSS
		s.MaxRSS = max(s.MaxRSS, m.MaxRSS)
	}
	s.Samples = append([]time.Duration(nil), walls...)
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	s.Median, s.Min, s.MedianRSS = walls[len(walls)/2], walls[0], rss[len(rss)/2]
	return s
}
