package cellspec

import (
	"fmt"
	"sort"
	"strings"
)

// Position locates a value in a source file. Line and Column are 1-based;
// zero means unknown.
type Position struct {
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func (p Position) String() string {
	switch {
	case p.Line > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	case p.File != "":
		return p.File
	}
	return "<unknown>"
}

// Problem is one thing wrong with a spec.
type Problem struct {
	Pos  Position `json:"pos"`
	Path string   `json:"path,omitempty"`
	Msg  string   `json:"message"`
	Hint string   `json:"hint,omitempty"`
}

func (p Problem) String() string { return formatProblem(p.Pos, p.Path, p.Msg, p.Hint) }

func formatProblem(pos Position, path, msg, hint string) string {
	var b strings.Builder
	b.WriteString(pos.String())
	b.WriteString(": ")
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	if hint != "" {
		b.WriteString(" (")
		b.WriteString(hint)
		b.WriteString(")")
	}
	return b.String()
}

// Problems is every problem found in a spec. It is the error returned by
// Load when a spec is invalid; callers branch on it with errors.As to report
// an invalid spec (exit code 2).
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sorted returns the problems ordered by file, line, column and message, with
// exact duplicates removed.
func (ps Problems) sorted() Problems {
	out := append(Problems(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Column != b.Pos.Column {
			return a.Pos.Column < b.Pos.Column
		}
		return a.String() < b.String()
	})
	uniq := out[:0]
	for i, p := range out {
		if i > 0 && p == out[i-1] {
			continue
		}
		uniq = append(uniq, p)
	}
	return uniq
}

// positions records where each field path of a cell was written.
type positions map[string]Position

// written reports whether path was written in the file.
func (p positions) written(path string) bool {
	_, ok := p[path]
	return ok
}

// at returns the position of path, falling back to the nearest written
// ancestor ("services.a.port" → "services.a" → "services" → "").
func (p positions) at(path string) Position {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		i := strings.LastIndexByte(path, '.')
		if i < 0 {
			return p[""]
		}
		path = path[:i]
	}
}
