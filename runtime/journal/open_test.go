package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orchestro/orchestro/runtime/flow"
)

// Frames built by hand, for segments no Store would write.

func beginFrame(id string, seq uint32, started time.Time) []byte {
	var e enc
	encodeBegin(&e, beginRec(id, "f", started))
	return appendFrame(nil, kindBegin, seq, id, e.b)
}

func intentFrame(id string, seq uint32, step string) []byte {
	var e enc
	e.str(step)
	return appendFrame(nil, kindIntent, seq, id, e.b)
}

func endFrame(id string, seq uint32, started time.Time) []byte {
	var e enc
	encodeEnd(&e, endRec(flow.Succeeded, started))
	return appendFrame(nil, kindEnd, seq, id, e.b)
}

// writeSegment writes segment n in dir: the magic, then frames. It
// returns its path.
func writeSegment(t testing.TB, dir string, n uint64, frames ...[]byte) string {
	t.Helper()
	data := []byte(segmentMagic)
	for _, f := range frames {
		data = append(data, f...)
	}
	return writeFile(t, dir, segmentName(n), data)
}

// writeFile writes a file in dir, creating dir, and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dirContents returns the contents of every file in dir but the lock.
func dirContents(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte)
	for _, name := range dirFiles(t, dir) {
		if name != lockName {
			out[name] = readFile(t, filepath.Join(dir, name))
		}
	}
	return out
}

// multiSegment journals 20 executions in segments of 4 KiB at path, and
// returns its segment files.
func multiSegment(t testing.TB, path string) []string {
	t.Helper()
	s := open(t, path, Options{segmentSize: 4 << 10})
	journalMany(t, s, "e", t0, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segmentFiles(t, path)
	if len(segs) < 3 {
		t.Fatalf("segments %q, want at least 3", segs)
	}
	return segs
}

// TestOpenCreatesDirectory opens a journal where no directory is: Open
// creates it, with its lock and a first segment, prepared.
func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "journal")
	s := open(t, path, Options{segmentSize: 64 << 10})
	if s.Dir() != path {
		t.Errorf("Dir() = %s, want %s", s.Dir(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, want a directory with mode 0700", path, fi.Mode())
	}
	if diff := cmp.Diff([]string{lockName, segmentName(1)}, dirFiles(t, path)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	data := readFile(t, filepath.Join(path, segmentName(1)))
	if len(data) != 64<<10 || !bytes.HasPrefix(data, []byte(segmentMagic)) || !allZero(data[len(segmentMagic):]) {
		t.Errorf("first segment of %d bytes starting %q, want the magic then zeros up to %d bytes", len(data), data[:min(len(data), 32)], 64<<10)
	}
	// It is a journal.
	run(t, s, "x", "f", t0, flow.Succeeded)
	if _, err := s.Get("x"); err != nil {
		t.Error(err)
	}
	if name := segmentName(12345); name != "executions-0000012345.log" {
		t.Errorf("segmentName(12345) = %s", name)
	}
}

// TestOpenLocked opens a journal another Store holds: Open waits about a
// second and fails, and succeeds once the other Store is closed.
func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{})
	run(t, s, "x", "f", t0, flow.Succeeded)

	start := time.Now()
	s2, err := Open(path, Options{})
	took := time.Since(start)
	if err == nil {
		_ = s2.Close()
		t.Fatal("Open of a journal another Store holds succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("Open: %v, want the journal locked by another process", err)
	}
	// Only the lower bound is checked: a loaded machine can make any
	// step slower, never the wait shorter.
	if took < lockTimeout-100*time.Millisecond {
		t.Errorf("Open failed after %v, want after waiting about %v", took, lockTimeout)
	}
	// The Store holding the lock is unaffected.
	run(t, s, "y", "f", t0, flow.Succeeded)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Released, the journal opens: a lock still held would fail Open
	// after lockTimeout.
	s = open(t, path, Options{})
	if list, err := s.List(Filter{}); err != nil || len(list) != 2 {
		t.Errorf("List = %d executions, %v; want 2", len(list), err)
	}
}

// TestOpenRefuses checks the journals Open refuses: it fails with an
// error naming the file (and the byte, for a frame), changes no file, and
// releases the lock.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name string
		// make writes the journal at dir, and returns the path of the file
		// Open must name and what else its error must say.
		make func(t *testing.T, dir string) (file, want string)
	}{
		{"garbage", func(t *testing.T, dir string) (string, string) {
			return writeFile(t, dir, segmentName(1), []byte("this is not a journal segment, or is it\n")), "not a journal segment"
		}},
		{"zeros", func(t *testing.T, dir string) (string, string) {
			return writeFile(t, dir, segmentName(1), make([]byte, 4096)), "not a journal segment"
		}},
		{"another version", func(t *testing.T, dir string) (string, string) {
			data := append([]byte("orchestro journal 2\n"), beginFrame("x", 0, t0)...)
			return writeFile(t, dir, segmentName(1), data), "not a journal segment"
		}},
		{"garbage after a segment", func(t *testing.T, dir string) (string, string) {
			writeSegment(t, dir, 1, beginFrame("x", 0, t0))
			return writeFile(t, dir, segmentName(2), []byte("garbage garbage garbage")), "not a journal segment"
		}},
		{"magic cut short before the last segment", func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir, segmentName(1), []byte(segmentMagic[:7]))
			writeSegment(t, dir, 2, beginFrame("x", 0, t0))
			return p, "not a journal segment"
		}},
		{"damaged frame before the last segment", func(t *testing.T, dir string) (string, string) {
			segs := multiSegment(t, dir)
			p := filepath.Join(dir, segs[0])
			offs, _ := frames(t, p)
			data := readFile(t, p)
			data[offs[2]+frameHeader+3] ^= 0x10
			writeFile(t, dir, segs[0], data)
			return p, fmt.Sprintf("at byte %d: %v", offs[2], errDamaged)
		}},
		{"frame cut short before the last segment", func(t *testing.T, dir string) (string, string) {
			segs := multiSegment(t, dir)
			p := filepath.Join(dir, segs[1])
			offs, _ := frames(t, p)
			last := offs[len(offs)-1]
			if err := os.Truncate(p, int64(last+frameHeader+2)); err != nil {
				t.Fatal(err)
			}
			return p, fmt.Sprintf("at byte %d: %v", last, errTorn)
		}},
		{"record missing in the middle", func(t *testing.T, dir string) (string, string) {
			writeSegment(t, dir, 1, beginFrame("x", 0, t0), intentFrame("y", 1, "s"))
			writeSegment(t, dir, 2, beginFrame("y", 0, t0), intentFrame("x", 2, "s"))
			return "execution x", "record 1 of 3 missing"
		}},
		{"first record not a begin", func(t *testing.T, dir string) (string, string) {
			writeSegment(t, dir, 1, intentFrame("x", 0, "s"), intentFrame("x", 1, "s"))
			return "execution x", "not a begin"
		}},
		{"valid frame of an unknown kind in the last segment", func(t *testing.T, dir string) (string, string) {
			p := writeSegment(t, dir, 1, beginFrame("x", 0, t0), appendFrame(nil, 'Z', 1, "x", nil))
			return p, "unknown"
		}},
		{"begin whose body is cut short", func(t *testing.T, dir string) (string, string) {
			p := writeSegment(t, dir, 1, appendFrame(nil, kindBegin, 0, "x", []byte{1, 'f'}))
			return p, errShort.Error()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tempPath(t)
			file, want := tt.make(t, dir)
			before := dirContents(t, dir)
			var logs logLines
			s, err := Open(dir, Options{Logf: logs.Logf})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), want) {
				t.Errorf("Open: %v\nwant an error naming %s, with %q", err, file, want)
			}
			if diff := cmp.Diff(before, dirContents(t, dir)); diff != "" {
				t.Errorf("Open changed the journal (-before +after):\n%s", diff)
			}
			if lines := logs.all(); len(lines) != 0 {
				t.Errorf("Open logged %q", lines)
			}
			// The lock is released: another Open does not wait for it.
			start := time.Now()
			if s, err := Open(dir, Options{}); err == nil {
				_ = s.Close()
			}
			if took := time.Since(start); took > lockTimeout/2 {
				t.Errorf("a second Open took %v: the first kept the lock", took)
			}
		})
	}
}

// TestOpenTornTail damages the end of the last segment as a crash during
// a write does: Open clears it and logs it, the execution it was a record
// of keeps the records before, and the journal carries on.
func TestOpenTornTail(t *testing.T) {
	stepB := &flow.StepRecord{Step: "b", State: flow.StepSucceeded, Status: 200, Body: []byte(`{"b":1}`), Started: t0}
	tests := []struct {
		name string
		// tear damages the segment data, whose frames are at offs and end at
		// end (zeros follow); it returns the data and where the torn tail
		// starts.
		tear func(data []byte, offs []int, end int) ([]byte, int)
		// lost reports that the last record, x's step b, is lost.
		lost bool
	}{
		{"byte flipped in the last frame", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			data[last+frameHeader+7] ^= 0x20
			return data, last
		}, true},
		{"checksum flipped in the last frame", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			data[last+5] ^= 0x01
			return data, last
		}, true},
		{"last frame half written", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			clear(data[last+(end-last)/2 : end])
			return data, last
		}, true},
		{"last frame with a length past the file", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			binary.LittleEndian.PutUint32(data[last:], uint32(len(data)))
			return data, last
		}, true},
		{"file cut in the last frame", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			return data[:last+frameHeader+3], last
		}, true},
		{"file cut in the last frame's header", func(data []byte, offs []int, end int) ([]byte, int) {
			last := offs[len(offs)-1]
			return data[:last+5], last
		}, true},
		{"part of a frame after the last", func(data []byte, offs []int, end int) ([]byte, int) {
			f := intentFrame("x", 5, "c")
			copy(data[end:], f[:len(f)-3])
			return data, end
		}, false},
		{"garbage after the last frame", func(data []byte, offs []int, end int) ([]byte, int) {
			copy(data[end+100:], "garbage")
			return data, end
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			opts := Options{segmentSize: 64 << 10}
			s := open(t, path, opts)
			run(t, s, "y", "f", t0, flow.Failed)
			s.Begin(beginRec("x", "f", t0.Add(time.Second)))
			s.Intent("x", "a")
			s.Step("x", &flow.StepRecord{Step: "a", State: flow.StepSucceeded, Status: 201, Started: t0})
			wait(t, s.Intent("x", "b"))
			beforeB := snap(t, s)
			wait(t, s.Step("x", stepB))
			afterB := snap(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			segs := segmentFiles(t, path)
			seg := filepath.Join(path, segs[len(segs)-1])
			offs, end := frames(t, seg)
			data, torn := tt.tear(readFile(t, seg), offs, end)
			writeFile(t, path, segs[len(segs)-1], data)

			var logs logLines
			opts.Logf = logs.Logf
			s = open(t, path, opts)
			cleared := logs.with("cleared")
			if len(cleared) != 1 || !strings.Contains(cleared[0], seg) {
				t.Errorf("Open logged %q, want one line on clearing the end of %s", logs.all(), seg)
			}
			want := afterB
			if tt.lost {
				want = beforeB
			}
			checkIndex(t, s)
			got := snap(t, s)
			compareSnapshots(t, "after the torn tail", want, got)
			if after := readFile(t, seg); len(after) != len(data) || !bytes.Equal(after[:torn], data[:torn]) || !allZero(after[torn:]) {
				t.Errorf("segment after Open: %d bytes, want the %d before byte %d unchanged and zeros after", len(after), len(data), torn)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			// Cleared, the tail is no news.
			var logs2 logLines
			opts.Logf = logs2.Logf
			s = open(t, path, opts)
			if lines := logs2.all(); len(lines) != 0 {
				t.Errorf("second Open logged %q", lines)
			}
			compareSnapshots(t, "after a second reopen", got, snap(t, s))

			// The journal carries on where it stopped: x's next records take
			// the numbers after what is left.
			if tt.lost {
				wait(t, s.Step("x", stepB))
			}
			wait(t, s.End("x", endRec(flow.Succeeded, t0.Add(time.Second))))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, path, opts)
			checkIndex(t, s)
			x, err := s.Get("x")
			if err != nil {
				t.Fatal(err)
			}
			var steps []string
			for _, st := range x.Steps {
				steps = append(steps, st.ID+" "+st.State)
			}
			if diff := cmp.Diff([]string{"a " + flow.StepSucceeded, "b " + flow.StepSucceeded}, steps); diff != "" || x.State != Succeeded {
				t.Errorf("x is %s with steps (-want +got):\n%s", x.State, diff)
			}
		})
	}
}

// TestOpenTornTailOnlyInLastSegment tears the end of a segment that is not
// the last, as TestOpenTornTail does the last: Open refuses it.
func TestOpenTornTailOnlyInLastSegment(t *testing.T) {
	path := tempPath(t)
	segs := multiSegment(t, path)
	seg := filepath.Join(path, segs[len(segs)-2])
	_, end := frames(t, seg)
	data := append(readFile(t, seg)[:end], intentFrame("e0019", 9, "c")[:10]...)
	writeFile(t, path, segs[len(segs)-2], data)
	s, err := Open(path, Options{})
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded")
	}
	if want := fmt.Sprintf("%s at byte %d", seg, end); !strings.Contains(err.Error(), want) {
		t.Errorf("Open: %v, want an error with %q", err, want)
	}
}

// TestOpenRepairsMagic opens a journal whose last segment holds only part
// of its magic, as a crash while it was created leaves it: Open writes the
// magic, and the journal carries on in it.
func TestOpenRepairsMagic(t *testing.T) {
	for _, n := range []int{0, 1, len(segmentMagic) / 2, len(segmentMagic) - 1} {
		for _, alone := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes alone=%v", n, alone), func(t *testing.T) {
				path := tempPath(t)
				segN := uint64(1)
				var before snapshot
				if !alone {
					s := open(t, path, Options{segmentSize: 64 << 10})
					run(t, s, "x", "f", t0, flow.Succeeded)
					before = snap(t, s)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					segN = 2
				}
				seg := writeFile(t, path, segmentName(segN), []byte(segmentMagic[:n]))

				s := open(t, path, Options{})
				if got := readFile(t, seg); string(got) != segmentMagic {
					t.Errorf("segment after Open: %q, want the magic", got)
				}
				if !alone {
					compareSnapshots(t, "after Open", before, snap(t, s))
				}
				run(t, s, "z", "f", t0.Add(time.Second), flow.Succeeded)
				want := snap(t, s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(segN, uint64(len(segmentFiles(t, path)))); diff != "" {
					t.Errorf("segment count (-want +got):\n%s", diff)
				}
				s = open(t, path, Options{})
				compareSnapshots(t, "after reopen", want, snap(t, s))
				if _, err := s.Get("z"); err != nil {
					t.Error(err)
				}
			})
		}
	}
}

// TestOpenRemovesSpares opens a journal with spare segments left by a
// process that stopped: Open removes them.
func TestOpenRemovesSpares(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{segmentSize: 64 << 10})
	run(t, s, "x", "f", t0, flow.Succeeded)
	before := snap(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, segmentName(2)+spareSuffix, append([]byte(segmentMagic), make([]byte, 1000)...))
	writeFile(t, path, segmentName(7)+spareSuffix, []byte("half"))
	writeFile(t, path, "notes.txt", []byte("not the journal's"))

	s = open(t, path, Options{segmentSize: 64 << 10})
	if diff := cmp.Diff([]string{lockName, segmentName(1), "notes.txt"}, dirFiles(t, path)); diff != "" {
		t.Errorf("files after Open (-want +got):\n%s", diff)
	}
	compareSnapshots(t, "after Open", before, snap(t, s))
}

// TestOpenLoadsCopies opens segments as compactions and retention leave
// them: a later copy of a record replaces the earlier one, records of an
// execution whose first record is gone are dead space, and a first
// segment left with nothing kept is removed.
func TestOpenLoadsCopies(t *testing.T) {
	path := tempPath(t)
	writeSegment(t, path, 3,
		beginFrame("x", 0, t0), intentFrame("x", 1, "old"),
		intentFrame("d", 1, "s"), endFrame("d", 2, t0),
	)
	writeSegment(t, path, 4,
		intentFrame("d", 3, "s"),
		beginFrame("x", 0, t0), intentFrame("x", 1, "copied"), intentFrame("x", 2, "new"),
	)
	s := open(t, path, Options{})
	un, err := s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Begin.ID != "x" {
		t.Fatalf("Unfinished: %+v, want x alone", un)
	}
	if diff := cmp.Diff([]string{"copied", "new"}, un[0].Intents); diff != "" {
		t.Errorf("intents of x (-want +got):\n%s", diff)
	}
	if _, err := s.Get("d"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of an execution without its begin: %v, want ErrNotFound", err)
	}
	if list, err := s.List(Filter{}); err != nil || len(list) != 1 {
		t.Errorf("List: %d executions, %v; want x alone", len(list), err)
	}
	checkIndex(t, s)
	if diff := cmp.Diff([]string{segmentName(4)}, segmentFiles(t, path)); diff != "" {
		t.Errorf("segments after Open (-want +got):\n%s", diff)
	}
	// x goes on in segment 4, numbered after its copies.
	wait(t, s.Intent("x", "later"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	un, err = s.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || !cmp.Equal([]string{"copied", "new", "later"}, un[0].Intents) {
		t.Errorf("Unfinished after reopen: %+v", un)
	}
}

// TestBeginReusesDroppedID begins an execution with the id of one
// retention dropped, which Begin allows (the journal no longer holds it):
// after a reopen, the new execution is what it was, not a mix of its
// records and those the old one left in the segments. (Begin refusing
// the id would do too.)
func TestBeginReusesDroppedID(t *testing.T) {
	path := tempPath(t)
	s := open(t, path, Options{Retain: 1})
	run(t, s, "a", "f", t0, flow.Failed)
	run(t, s, "b", "f", t0.Add(time.Second), flow.Succeeded)
	if _, err := s.Get("a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(a) after retention dropped it: %v", err)
	}
	if err := s.Begin(beginRec("a", "f", t0.Add(2*time.Second))).Wait(); err != nil {
		// Refusing the id is a way out too.
		t.Logf("Begin of a dropped id: %v", err)
		return
	}
	wait(t, s.Intent("a", "step"))
	before := snap(t, s)
	if len(before.unfinished) != 1 || before.unfinished[0].Begin.ID != "a" {
		t.Fatalf("Unfinished: %+v, want the new a", before.unfinished)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{Retain: 1})
	compareSnapshots(t, "after reopen", before, snap(t, s))
}
