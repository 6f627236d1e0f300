// Package output writes command results: JSON for scripts, a lipgloss table on a terminal,
// tab-separated text otherwise. Results go to Out; logs and progress go to ErrOut.
package output

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"golang.org/x/term"
)

// IO holds the streams of one command invocation.
type IO struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	OutTTY  bool // Out is a terminal
	ErrTTY  bool // ErrOut is a terminal
	NoColor bool
}

// System returns the process's streams with TTY detection.
func System() *IO {
	return &IO{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		OutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// Styles holds every lipgloss style docora uses, in one place.
type Styles struct {
	Header  lipgloss.Style
	Cell    lipgloss.Style
	Border  lipgloss.Style
	OK      lipgloss.Style
	Warn    lipgloss.Style
	Bad     lipgloss.Style
	Faint   lipgloss.Style
	Heading lipgloss.Style
}

// Styles returns the styles for this IO: plain when colour is off.
func (o *IO) Styles() Styles {
	r := lipgloss.NewRenderer(o.Out)
	if o.NoColor || !o.OutTTY {
		return Styles{Header: r.NewStyle().Bold(true), Cell: r.NewStyle(), Border: r.NewStyle(),
			OK: r.NewStyle(), Warn: r.NewStyle(), Bad: r.NewStyle(), Faint: r.NewStyle(), Heading: r.NewStyle().Bold(true)}
	}
	return Styles{
		Header:  r.NewStyle().Bold(true).Foreground(lipgloss.Color("12")).Padding(0, 1),
		Cell:    r.NewStyle().Padding(0, 1),
		Border:  r.NewStyle().Foreground(lipgloss.Color("8")),
		OK:      r.NewStyle().Foreground(lipgloss.Color("10")),
		Warn:    r.NewStyle().Foreground(lipgloss.Color("11")),
		Bad:     r.NewStyle().Foreground(lipgloss.Color("9")),
		Faint:   r.NewStyle().Faint(true),
		Heading: r.NewStyle().Bold(true).Foreground(lipgloss.Color("13")),
	}
}

// JSON writes v as indented JSON followed by a newline.
func (o *IO) JSON(v any) error {
	enc := json.NewEncoder(o.Out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Table writes rows under headers: a bordered table on a terminal, tab-separated text (with
// a header line) otherwise, so `cut -f` and `awk -F'\t'` work in scripts.
func (o *IO) Table(headers []string, rows [][]string) error {
	if !o.OutTTY {
		var b strings.Builder
		b.WriteString(strings.Join(headers, "\t"))
		b.WriteByte('\n')
		for _, r := range rows {
			for i := range r {
				r[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(r[i])
			}
			b.WriteString(strings.Join(r, "\t"))
			b.WriteByte('\n')
		}
		_, err := io.WriteString(o.Out, b.String())
		return err
	}
	st := o.Styles()
	t := table.New().
		Border(lipgloss.RoundedBorder()).
		BorderStyle(st.Border).
		Headers(headers...).
		Rows(rows...).
		StyleFunc(func(row, _ int) lipgloss.Style {
			if row == table.HeaderRow {
				return st.Header
			}
			return st.Cell
		})
	_, err := fmt.Fprintln(o.Out, t.Render())
	return err
}

// Fields writes one object as aligned "key: value" lines.
func (o *IO) Fields(pairs [][2]string) error {
	width := 0
	for _, p := range pairs {
		width = max(width, len(p[0]))
	}
	st := o.Styles()
	var b strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s %s\n", st.Faint.Render(fmt.Sprintf("%-*s", width+1, p[0]+":")), p[1])
	}
	_, err := io.WriteString(o.Out, b.String())
	return err
}
