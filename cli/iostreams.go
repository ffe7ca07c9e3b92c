package cli

import (
	"bytes"
	"io"
	"os"
	"strconv"

	"golang.org/x/term"
)

// IOStreams owns the process's standard streams and decides, in one place,
// whether output is a terminal and whether it may be coloured. Data goes to
// Out; progress and diagnostics go to ErrOut.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer

	stdoutTTY bool
	stderrTTY bool
	noColor   bool
}

// System returns streams bound to the process's stdin, stdout and stderr.
// Colour is off when NO_COLOR is set (to anything) or TERM is "dumb".
func System() *IOStreams {
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IOStreams{
		In:        os.Stdin,
		Out:       os.Stdout,
		ErrOut:    os.Stderr,
		stdoutTTY: isTerminal(os.Stdout),
		stderrTTY: isTerminal(os.Stderr),
		noColor:   noColor || os.Getenv("TERM") == "dumb",
	}
}

// TestStreams returns streams writing to buffers, neither of them a terminal.
func TestStreams() (ios *IOStreams, in, out, errOut *bytes.Buffer) {
	in, out, errOut = &bytes.Buffer{}, &bytes.Buffer{}, &bytes.Buffer{}
	return &IOStreams{In: in, Out: out, ErrOut: errOut}, in, out, errOut
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// SetStdoutTTY overrides terminal detection of Out (for tests).
func (s *IOStreams) SetStdoutTTY(v bool) { s.stdoutTTY = v }

// SetStderrTTY overrides terminal detection of ErrOut (for tests).
func (s *IOStreams) SetStderrTTY(v bool) { s.stderrTTY = v }

// SetNoColor turns colour off (the --no-color flag).
func (s *IOStreams) SetNoColor(v bool) { s.noColor = v }

// IsStdoutTTY reports whether Out is a terminal.
func (s *IOStreams) IsStdoutTTY() bool { return s.stdoutTTY }

// IsStderrTTY reports whether ErrOut is a terminal.
func (s *IOStreams) IsStderrTTY() bool { return s.stderrTTY }

// ColorOut reports whether Out may be coloured.
func (s *IOStreams) ColorOut() bool { return s.stdoutTTY && !s.noColor }

// ColorErr reports whether ErrOut may be coloured.
func (s *IOStreams) ColorErr() bool { return s.stderrTTY && !s.noColor }

// Palette returns the colour functions for a stream; they return their
// input unchanged when colour is off.
func (s *IOStreams) Palette(enabled bool) Palette { return Palette{on: enabled} }

// Palette applies ANSI colours when enabled.
type Palette struct{ on bool }

func (p Palette) wrap(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Red colours s red.
func (p Palette) Red(s string) string { return p.wrap("31", s) }

// Green colours s green.
func (p Palette) Green(s string) string { return p.wrap("32", s) }

// Yellow colours s yellow.
func (p Palette) Yellow(s string) string { return p.wrap("33", s) }

// Bold makes s bold.
func (p Palette) Bold(s string) string { return p.wrap("1", s) }

// Dim makes s faint.
func (p Palette) Dim(s string) string { return p.wrap("2", s) }

// Color applies one of the 256-colour palette's entries, for prefixes.
func (p Palette) Color(n int, s string) string { return p.wrap("38;5;"+strconv.Itoa(n), s) }
