package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// logLines records what a Store logs through Options.Logf.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// all returns the lines logged so far.
func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// with returns the lines logged so far that hold sub.
func (l *logLines) with(sub string) []string {
	var out []string
	for _, line := range l.all() {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return out
}

// dirFiles returns the names of the files in dir, sorted.
func dirFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// segmentFiles returns the names of the segment files in dir, sorted:
// not the lock, not the spares.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range dirFiles(t, dir) {
		if strings.HasPrefix(name, segmentPrefix) && strings.HasSuffix(name, segmentSuffix) {
			out = append(out, name)
		}
	}
	return out
}

// spareFiles returns the names of the spare segment files in dir.
func spareFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range dirFiles(t, dir) {
		if strings.HasSuffix(name, spareSuffix) {
			out = append(out, name)
		}
	}
	return out
}

// dirSize returns the size of every file in dir.
func dirSize(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range dirFiles(t, dir) {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// frames walks the segment file at path, independently of Open: it
// returns the offset of each frame, and where the frames end (the zeros
// of the preallocation or the end of the file start there). It fails the
// test on a file that is not a clean segment.
func frames(t testing.TB, path string) (offs []int, end int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte(segmentMagic)) {
		t.Fatalf("%s does not start with the magic", path)
	}
	off := len(segmentMagic)
	for off < len(data) && !allZero(data[off:]) {
		_, n, err := nextFrame(data[off:])
		if err != nil {
			t.Fatalf("%s at byte %d: %v", path, off, err)
		}
		offs = append(offs, off)
		off += n
	}
	return offs, off
}

// snapshot is what a Store shows of its executions.
type snapshot struct {
	list       []*Summary
	executions map[string]*Execution
	unfinished []*flow.Journaled
}

// snap reads everything s shows: its List, each listed execution's Get,
// and Unfinished.
func snap(t testing.TB, s *Store) snapshot {
	t.Helper()
	list, err := s.List(Filter{})
	if err != nil {
		t.Fatal(err)
	}
	sn := snapshot{list: list, executions: make(map[string]*Execution)}
	for _, sum := range list {
		x, err := s.Get(sum.ID)
		if err != nil {
			t.Fatalf("Get(%s): %v", sum.ID, err)
		}
		sn.executions[sum.ID] = x
	}
	if sn.unfinished, err = s.Unfinished(); err != nil {
		t.Fatal(err)
	}
	return sn
}

// bytesEqual compares bodies whole, rather than byte by byte as cmp
// does, which is slow for thousands of them.
var bytesEqual = cmp.Comparer(func(a, b []byte) bool { return bytes.Equal(a, b) })

// compareSnapshots fails the test when got and want differ.
func compareSnapshots(t testing.TB, what string, want, got snapshot) {
	t.Helper()
	if diff := cmp.Diff(want.list, got.list); diff != "" {
		t.Errorf("%s: List (-want +got):\n%s", what, diff)
	}
	if diff := cmp.Diff(want.executions, got.executions, bytesEqual); diff != "" {
		t.Errorf("%s: Get (-want +got):\n%s", what, diff)
	}
	if diff := cmp.Diff(want.unfinished, got.unfinished, bytesEqual); diff != "" {
		t.Errorf("%s: Unfinished (-want +got):\n%s", what, diff)
	}
}

// checkIndex checks the bookkeeping of s against its index: each
// segment's live bytes are those of the frames the index points at in
// it, liveBytes is their sum, total the sum of the segments' sizes, and
// every frame the index points at is in a segment of s, within its size,
// and holds a record of its execution with the right number.
func checkIndex(t testing.TB, s *Store) {
	t.Helper()
	s.idx.RLock()
	defer s.idx.RUnlock()
	live := make(map[*segment]int64)
	var liveBytes, total int64
	for _, seg := range s.segs {
		live[seg] = 0
		total += seg.size
	}
	for id, e := range s.entries {
		for seq, l := range e.recs {
			if _, ok := live[l.seg]; !ok {
				t.Errorf("record %d of %s is in %s, not a segment of the Store", seq, id, l.seg.path)
				continue
			}
			if l.off < int64(len(segmentMagic)) || l.off+l.n > l.seg.size {
				t.Errorf("record %d of %s at %d+%d, out of %s of %d bytes", seq, id, l.off, l.n, l.seg.path, l.seg.size)
			}
			live[l.seg] += l.n
			liveBytes += l.n
			p, err := readFrame(l)
			switch {
			case err != nil:
				t.Errorf("record %d of %s: %v", seq, id, err)
			case p.id != id || p.seq != uint32(seq):
				t.Errorf("record %d of %s is record %d of %s", seq, id, p.seq, p.id)
			}
		}
	}
	for _, seg := range s.segs {
		if seg.live != live[seg] {
			t.Errorf("%s: live %d, the index points at %d bytes in it", seg.path, seg.live, live[seg])
		}
	}
	if s.liveBytes != liveBytes {
		t.Errorf("liveBytes %d, the index points at %d", s.liveBytes, liveBytes)
	}
	if s.total != total {
		t.Errorf("total %d, the segments hold %d", s.total, total)
	}
}

// activeSize is the size of s's active segment.
func activeSize(s *Store) int64 {
	s.idx.RLock()
	defer s.idx.RUnlock()
	return s.segs[len(s.segs)-1].size
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("waited 5s for %s", what)
		}
	}
}

// journalMany journals n executions of flows a and b, started a second
// apart from start, each with a step of a 1000-byte body; it waits on
// every tenth so that records commit in many batches.
func journalMany(t testing.TB, s *Store, prefix string, start time.Time, n int) {
	t.Helper()
	body := bytes.Repeat([]byte("x"), 1000)
	for i := range n {
		id := fmt.Sprintf("%s%04d", prefix, i)
		started := start.Add(time.Duration(i) * time.Second)
		flowName := "a"
		if i%3 == 0 {
			flowName = "b"
		}
		s.Begin(beginRec(id, flowName, started))
		s.Intent(id, "step")
		s.Step(id, &flow.StepRecord{Step: "step", State: flow.StepSucceeded, Status: 200, Body: body, Started: started})
		c := s.End(id, endRec(flow.Succeeded, started))
		if i%10 == 9 || i == n-1 {
			wait(t, c)
		}
	}
}

// TestSegmentRotation journals enough to fill several small segments:
// they are named in order, each is full before the next starts, the spare
// prepared for the next is gone after Close, and a reopen reads back the
// same executions, one of them with records in every segment.
func TestSegmentRotation(t *testing.T) {
	const size = 64 << 10
	path := tempPath(t)
	s := open(t, path, Options{segmentSize: size})

	// u has records in every segment: an intent every 50 executions.
	wait(t, s.Begin(beginRec("u", "a", t0.Add(-time.Hour))))
	var intents []string
	for i := range 6 {
		intents = append(intents, fmt.Sprintf("step%d", i))
		wait(t, s.Intent("u", intents[i]))
		journalMany(t, s, fmt.Sprintf("e%d-", i), t0.Add(time.Duration(i)*time.Hour), 50)
	}
	// Until the active segment is half full, when the next one is
	// prepared.
	for i := 0; activeSize(s) < size/2 || activeSize(s) >= size; i++ {
		run(t, s, fmt.Sprintf("fill%d", i), "a", t0.Add(-time.Duration(i+1)*time.Second), flow.Succeeded)
	}
	segs := segmentFiles(t, path)
	if len(segs) < 4 {
		t.Fatalf("%d segments after 300 executions of over 1 KB in segments of 64 KiB: %q", len(segs), segs)
	}
	for i, name := range segs {
		if want := segmentName(uint64(i + 1)); name != want {
			t.Errorf("segment %d is %s, want %s", i, name, want)
		}
		fi, err := os.Stat(filepath.Join(path, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() < size {
			t.Errorf("%s holds %d bytes, want it prepared to %d", name, fi.Size(), size)
		}
		if i == len(segs)-1 {
			continue
		}
		// The writer moves on once a segment is full, and not before.
		if _, end := frames(t, filepath.Join(path, name)); end < size || end > size+32<<10 {
			t.Errorf("%s holds frames up to byte %d, want from %d to %d", name, end, size, size+32<<10)
		}
	}
	waitFor(t, "the spare segment", func() bool { return len(spareFiles(t, path)) == 1 })
	if got, want := spareFiles(t, path)[0], segmentName(uint64(len(segs)+1))+spareSuffix; got != want {
		t.Errorf("spare %s, want %s", got, want)
	}
	checkIndex(t, s)
	before := snap(t, s)
	if len(before.list) < 301 || len(before.unfinished) != 1 {
		t.Fatalf("%d executions, %d unfinished", len(before.list), len(before.unfinished))
	}
	if diff := cmp.Diff(intents, before.unfinished[0].Intents); diff != "" {
		t.Errorf("intents of u (-want +got):\n%s", diff)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if spares := spareFiles(t, path); len(spares) != 0 {
		t.Errorf("spares after Close: %q", spares)
	}
	if diff := cmp.Diff(segs, segmentFiles(t, path)); diff != "" {
		t.Errorf("segments after Close (-before +after):\n%s", diff)
	}

	s = open(t, path, Options{segmentSize: size})
	checkIndex(t, s)
	compareSnapshots(t, "after reopen", before, snap(t, s))
	// The journal goes on in the last segment.
	wait(t, s.Intent("u", "after"))
	s.idx.RLock()
	e := s.entries["u"]
	lastSeg := e.recs[len(e.recs)-1].seg.n
	s.idx.RUnlock()
	if lastSeg != uint64(len(segs)) {
		t.Errorf("a record after the reopen went to segment %d, want %d", lastSeg, len(segs))
	}
}

// TestRetentionFreesSegments journals many executions with a small
// Retain: the segments that hold only dropped executions are removed, so
// that the files stay few and small, and a reopen shows the same.
func TestRetentionFreesSegments(t *testing.T) {
	const size = 64 << 10
	path := tempPath(t)
	opts := Options{Retain: 3, segmentSize: size}
	s := open(t, path, opts)

	maxSegs := 0
	for i := range 12 {
		journalMany(t, s, fmt.Sprintf("e%02d-", i), t0.Add(time.Duration(i)*time.Hour), 50)
		maxSegs = max(maxSegs, len(segmentFiles(t, path)))
	}
	// 600 executions of over 1 KB, 3 kept of each flow: the writer may
	// not have removed the segments a commit emptied when its Wait returns.
	if maxSegs > 4 {
		t.Errorf("up to %d segment files, want at most 4", maxSegs)
	}
	checkIndex(t, s)
	before := snap(t, s)
	var ids []string
	for _, sum := range before.list {
		ids = append(ids, sum.ID)
	}
	if diff := cmp.Diff([]string{"e11-0049", "e11-0048", "e11-0047", "e11-0046", "e11-0045", "e11-0042"}, ids); diff != "" {
		t.Errorf("executions kept (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	segs := segmentFiles(t, path)
	if len(segs) > 3 {
		t.Errorf("segment files after Close: %q, want at most 3", segs)
	}
	if len(segs) == 0 || segs[0] == segmentName(1) {
		t.Errorf("segment files after Close: %q, want the first ones removed", segs)
	}
	if n := dirSize(t, path); n > 3*size+32<<10 {
		t.Errorf("journal of %d bytes, want at most %d", n, 3*size+32<<10)
	}

	s = open(t, path, opts)
	checkIndex(t, s)
	compareSnapshots(t, "after reopen", before, snap(t, s))
	if _, err := s.Get("e11-0044"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a dropped execution after reopen: %v, want ErrNotFound", err)
	}
	if _, err := s.Get("e00-0001"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of the first execution after reopen: %v, want ErrNotFound", err)
	}
}

// TestRecordOverMaxFrame journals a step whose body is larger than a frame
// Open reads back may be: the journal either refuses it at once or reads
// it back after a reopen, and never acknowledges a record that makes the
// journal unreadable.
func TestRecordOverMaxFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a record of 64 MiB")
	}
	path := tempPath(t)
	opts := Options{segmentSize: 64 << 10}
	s := open(t, path, opts)
	wait(t, s.Begin(beginRec("x", "f", t0)))
	body := bytes.Repeat([]byte{'b'}, maxFrame)
	err := s.Step("x", &flow.StepRecord{Step: "big", State: flow.StepSucceeded, Body: body}).Wait()
	if err != nil {
		t.Logf("the record is refused: %v", err)
		return
	}
	run(t, s, "y", "f", t0.Add(time.Second), flow.Succeeded)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, opts)
	if err != nil {
		t.Fatalf("Open after a step of %d bytes was acknowledged: %v", len(body), err)
	}
	defer s.Close()
	x, err := s.Get("x")
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Steps) != 1 || len(x.Steps[0].Body) != len(body) {
		t.Errorf("x after reopen: %d steps, want its step of %d bytes", len(x.Steps), len(body))
	}
}
