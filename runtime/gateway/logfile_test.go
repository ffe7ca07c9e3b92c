package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/api"
	"github.com/orchestro/orchestro/runtime/proxy"
)

// testLine is access-log line i, of a request at second i past t0, padded
// to 100 bytes.
func testLine(i int) string {
	head := fmt.Sprintf(`{"time":"%s","n":%d,"pad":"`, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano), i)
	return head + strings.Repeat("x", 100-len(head)-3) + "\"}\n"
}

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// writeLines writes lines from..to-1, chunk lines per Write.
func writeLines(t *testing.T, l *logFile, from, to, chunk int) {
	t.Helper()
	for i := from; i < to; i += chunk {
		var b strings.Builder
		for j := i; j < min(i+chunk, to); j++ {
			b.WriteString(testLine(j))
		}
		if _, err := l.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
	}
}

// readAll reads the log as q selects it, without following, and returns
// the numbers of its lines.
func readAll(t *testing.T, l *logFile, q api.AccessLogQuery) []int {
	t.Helper()
	var got []int
	err := l.Read(context.Background(), q, func(b []byte) error {
		got = append(got, lineNumbers(t, b)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func lineNumbers(t *testing.T, b []byte) []int {
	t.Helper()
	var out []int
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if !strings.HasSuffix(line, "\n") {
			t.Fatalf("a chunk ends inside a line: %q", line)
		}
		var n int
		if _, err := fmt.Sscanf(line[strings.Index(line, `"n":`):], `"n":%d`, &n); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, n)
	}
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// TestLogFileRotation: the files never hold more than maxFiles × maxSize,
// the newest lines are the ones kept, and every line is whole.
func TestLogFileRotation(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(dir, 1000, 3) // ten lines a file
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeLines(t, l, 0, 95, 3)
	var total int64
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, name := range names {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1000 {
			t.Errorf("%s holds %d bytes, more than max_size", filepath.Base(name), st.Size())
		}
		total += st.Size()
	}
	if len(names) != 3 {
		t.Errorf("files %v, want access.log and two older ones", names)
	}
	if total > 3000 {
		t.Errorf("the files hold %d bytes, more than 3 × max_size", total)
	}
	got := readAll(t, l, api.AccessLogQuery{Tail: -1})
	if len(got) == 0 || got[len(got)-1] != 94 {
		t.Fatalf("lines %v do not end with the last written", got)
	}
	if diff := cmp.Diff(seq(got[0], 95), got); diff != "" {
		t.Errorf("lines kept are not the newest, in order (-want +got):\n%s", diff)
	}
	if len(got) < 20 {
		t.Errorf("only %d lines kept of three files of ten", len(got))
	}
}

func TestLogFileTailAndSince(t *testing.T) {
	l, err := openLogFile(t.TempDir(), 1000, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeLines(t, l, 0, 35, 1)
	tests := []struct {
		name string
		q    api.AccessLogQuery
		want []int
	}{
		{"all", api.AccessLogQuery{Tail: -1}, seq(0, 35)},
		{"tail within the newest file", api.AccessLogQuery{Tail: 3}, seq(32, 35)},
		{"tail across files", api.AccessLogQuery{Tail: 17}, seq(18, 35)},
		{"tail beyond the log", api.AccessLogQuery{Tail: 500}, seq(0, 35)},
		{"tail 0", api.AccessLogQuery{Tail: 0}, nil},
		{"since", api.AccessLogQuery{Tail: -1, Since: t0.Add(25 * time.Second)}, seq(25, 35)},
		{"since and tail", api.AccessLogQuery{Tail: 4, Since: t0.Add(33 * time.Second)}, seq(33, 35)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, readAll(t, l, tt.q)); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLogFileReopen: a new gateway of the cell goes on with the files the
// previous one left, within the same bound.
func TestLogFileReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(dir, 1000, 5)
	if err != nil {
		t.Fatal(err)
	}
	writeLines(t, l, 0, 45, 1)
	l.Close()
	l, err = openLogFile(dir, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeLines(t, l, 45, 48, 1)
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(names) != 2 {
		t.Errorf("files %v after the bound went down to two", names)
	}
	if diff := cmp.Diff(seq(30, 48), readAll(t, l, api.AccessLogQuery{Tail: -1})); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestLogFileFollow: a follower gets every line after the backlog, in
// order, across rotations, and stops when its context ends.
func TestLogFileFollow(t *testing.T) {
	dir := t.TempDir()
	l, err := openLogFile(dir, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	writeLines(t, l, 0, 5, 1)
	f := follow(t, l, api.AccessLogQuery{Tail: 2, Follow: true}, nil)
	waitFor(t, func() bool { return len(f.lines()) == 2 })
	// Slowly enough for the follower to keep up with the rotations
	// (one every ten lines).
	for i := 5; i < 60; i++ {
		writeLines(t, l, i, i+1, 1)
		f.waitLast(t, i)
	}
	// Five rotations later the follower holds one file open, beside the
	// writer's, not one per rotation.
	if n := openFilesIn(t, dir); n > 2 {
		t.Errorf("%d files of the log are open, want at most 2", n)
	}
	if diff := cmp.Diff(seq(3, 60), f.stop(t)); diff != "" {
		t.Errorf("followed lines (-want +got):\n%s", diff)
	}
}

// TestLogFileFollowCatchesUp: a follower that stalls while the log
// rotates more than once goes on with the files in between, which are
// still there, rather than jumping to the newest and losing them.
func TestLogFileFollowCatchesUp(t *testing.T) {
	// The log rotates twice while the follower stalls.
	f := followStalledWhileRotating(t, 4, 28)
	if diff := cmp.Diff(seq(0, 28), f.stop(t)); diff != "" {
		t.Errorf("followed lines (-want +got):\n%s", diff)
	}
}

// TestLogFileFollowTellsOfLostFiles: a follower that stalls while the
// log rotates more often than it keeps files reads on from the oldest
// file still there, and is told in the stream, where they are missing,
// how many files went unread.
func TestLogFileFollowTellsOfLostFiles(t *testing.T) {
	// The log rotates five times while the follower stalls, and keeps
	// two files (lines 40 to 59).
	f := followStalledWhileRotating(t, 2, 60)
	if diff := cmp.Diff(append(seq(0, 10), seq(40, 60)...), f.stop(t)); diff != "" {
		t.Errorf("followed lines (-want +got):\n%s", diff)
	}
	want := []notice{{After: 10, Text: "WARN 3: access log: this reader fell behind, and 3 files of the log rotated away before it read them; their lines are missing here"}}
	if diff := cmp.Diff(want, f.notices); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// followStalledWhileRotating writes lines 0 to 4 to a log of ten-line
// files that keeps keep of them, and follows it from the start. The
// follower holds its first chunk while lines 5 to n-1 are written; then it
// goes on, and it is returned once it has read line n-1.
func followStalledWhileRotating(t *testing.T, keep, n int) *follower {
	t.Helper()
	l, err := openLogFile(t.TempDir(), 1000, keep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	writeLines(t, l, 0, 5, 1)
	stall := make(chan struct{})
	f := follow(t, l, api.AccessLogQuery{Tail: -1, Follow: true}, stall)
	<-f.stalled
	writeLines(t, l, 5, n, 1)
	close(stall)
	f.waitLast(t, n-1)
	return f
}

// follower follows a log in the background and keeps the numbers of
// the lines it gets.
type follower struct {
	cancel context.CancelFunc
	done   chan error
	// stalled is closed when the first chunk came and, if follow was
	// given a stall channel, the follower waits for it to close.
	stalled chan struct{}

	mu  sync.Mutex
	got []int
	// notices are the lines of the log's own warnings, each with how
	// many lines came before it.
	notices []notice
}

// notice is a warning line a follower got among the log's lines.
type notice struct {
	After int
	Text  string
}

func follow(t *testing.T, l *logFile, q api.AccessLogQuery, stall <-chan struct{}) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, done: make(chan error, 1), stalled: make(chan struct{})}
	first := true
	go func() {
		f.done <- l.Read(ctx, q, func(b []byte) error {
			if first {
				first = false
				close(f.stalled)
				if stall != nil {
					<-stall
				}
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if strings.Contains(string(b), `"lost_files"`) {
				var n struct {
					Level     string `json:"level"`
					Msg       string `json:"msg"`
					LostFiles int    `json:"lost_files"`
				}
				if err := json.Unmarshal(b, &n); err != nil {
					return fmt.Errorf("notice %q: %w", b, err)
				}
				f.notices = append(f.notices, notice{After: len(f.got), Text: fmt.Sprintf("%s %d: %s", n.Level, n.LostFiles, n.Msg)})
				return nil
			}
			f.got = append(f.got, lineNumbers(t, b)...)
			return nil
		})
	}()
	return f
}

func (f *follower) lines() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// waitLast waits until line n is the last the follower got.
func (f *follower) waitLast(t *testing.T, n int) {
	t.Helper()
	waitFor(t, func() bool {
		got := f.lines()
		return len(got) > 0 && got[len(got)-1] == n
	})
}

// stop ends the follow and returns the lines it got.
func (f *follower) stop(t *testing.T) []int {
	t.Helper()
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatal(err)
	}
	return f.lines()
}

// openFilesIn counts the descriptors of this process open on files in
// dir (Linux only: it skips elsewhere).
func openFilesIn(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// TestLogFileFollowEndsOnClose: a gateway that stops ends the streams of
// its followers.
func TestLogFileFollowEndsOnClose(t *testing.T) {
	l, err := openLogFile(t.TempDir(), 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- l.Read(context.Background(), api.AccessLogQuery{Tail: -1, Follow: true}, func([]byte) error { return nil })
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the follower did not stop when the log was closed")
	}
}

// TestAccessLogSampling: a sampled log keeps the given share of the
// successful requests, and every failed one.
func TestAccessLogSampling(t *testing.T) {
	var out strings.Builder
	l := newAccessLogger(&out, 0.25)
	for i := range 400 {
		rec := proxy.RequestRecord{Time: t0, Method: "GET", Path: "/", Status: 200, Tries: 1}
		switch {
		case i%40 == 0:
			rec.Status = 503
		case i%40 == 1:
			rec.Status, rec.Error = proxy.StatusClientClosed, "client went away"
		}
		l.log(&rec)
	}
	l.flush()
	ok, failed := 0, 0
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if strings.Contains(line, `"status":200`) {
			ok++
		} else {
			failed++
		}
	}
	if failed != 20 {
		t.Errorf("%d failed requests logged, want all 20", failed)
	}
	if ok != 95 {
		t.Errorf("%d of 380 successful requests logged, want a quarter, 95", ok)
	}
}

// TestAccessLogOff: a logger without a writer encodes nothing.
func TestAccessLogOff(t *testing.T) {
	l := newAccessLogger(nil, 1)
	l.log(&proxy.RequestRecord{Time: t0, Status: 200})
	l.flush()
	if len(l.pending) != 0 {
		t.Errorf("an access log that is off buffered %q", l.pending)
	}
}

// TestAccessLogBatches: lines are written in batches, within flushDelay of
// the first, never one write per line.
func TestAccessLogBatches(t *testing.T) {
	w := &countingWriter{}
	l := newAccessLogger(w, 1)
	for range 50 {
		l.log(&proxy.RequestRecord{Time: t0, Method: "GET", Path: "/", Status: 200})
	}
	waitFor(t, func() bool { return w.lines() == 50 })
	if n := w.count(); n != 1 {
		t.Errorf("50 lines took %d writes, want one batch", n)
	}
}

type countingWriter struct {
	mu     sync.Mutex
	writes int
	b      strings.Builder
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *countingWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

func (w *countingWriter) lines() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Count(w.b.String(), "\n")
}
