package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time { return c.t }

func TestProgressPlain(t *testing.T) {
	ios, _, _, errOut := TestStreams()
	clk := &stepClock{t: time.Unix(0, 0)}
	p := newProgressPrinter(ios, clk.now)
	p.Start("build a", "build shop/a (go)")
	p.Start("build b", "build shop/b (go)")
	clk.t = clk.t.Add(1200 * time.Millisecond)
	p.Done("build a", "build shop/a → a:1", nil)
	p.Start("build b", "build shop/b (go), linking")
	p.Done("build b", "build shop/b", errors.New("compile: exit status 1\nmain.go:3: undefined: x"))
	p.Note("warning: cell old is not in the spec any more")
	p.Close()
	want := strings.Join([]string{
		"… build shop/a (go)",
		"… build shop/b (go)",
		"✔ build shop/a → a:1 1.2s",
		"… build shop/b (go), linking",
		"✘ build shop/b: compile: exit status 1 … 1.2s",
		"warning: cell old is not in the spec any more",
		"",
	}, "\n")
	if diff := cmp.Diff(want, errOut.String()); diff != "" {
		t.Errorf("plain progress (-want +got):\n%s", diff)
	}
}

// TestProgressLive checks the terminal rendering without the animation
// goroutine: running steps are redrawn in place below finished ones.
func TestProgressLive(t *testing.T) {
	var out bytes.Buffer
	clk := &stepClock{t: time.Unix(0, 0)}
	p := &progressPrinter{w: &out, live: true, now: clk.now}
	p.Start("a", "build a")
	p.Start("b", "build b")
	clk.t = clk.t.Add(2 * time.Second)
	p.Done("a", "build a", nil)
	p.Done("b", "build b", nil)
	got := strings.Split(out.String(), "\n")
	want := []string{
		"\r\x1b[2K⠋ build a 0s",
		"\x1b[1A\r\x1b[2K⠋ build a 0s",
		"\r\x1b[2K⠋ build b 0s",
		// a finishes: its line is printed where the live block began, b
		// is redrawn below it.
		"\x1b[2A\r\x1b[2K✔ build a 2s",
		"\r\x1b[2K⠋ build b 2s",
		// b finishes: the block is empty, one line left to clear.
		"\x1b[1A\r\x1b[2K✔ build b 2s",
		"",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("live progress (-want +got):\n%s", diff)
	}
}
