package journal

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/orchestro/orchestro/runtime/flow"
)

// TestOpenRefuses checks that a file Open cannot use makes it fail with an
// error naming the file, without a panic and without changing the file.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name string
		// make writes the file at path.
		make func(t *testing.T, path string)
		want string
	}{
		{"not a bbolt file", func(t *testing.T, path string) {
			writeRandom(t, path, 64<<10)
		}, "not a journal or corrupt"},
		{"zeros", func(t *testing.T, path string) {
			if err := os.WriteFile(path, make([]byte, 16<<10), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a journal or corrupt"},
		{"truncated", func(t *testing.T, path string) {
			journalWithData(t, path)
			if err := os.Truncate(path, fileSize(t, path)/2); err != nil {
				t.Fatal(err)
			}
		}, "corrupt file"},
		{"truncated to its meta pages", func(t *testing.T, path string) {
			journalWithData(t, path)
			if err := os.Truncate(path, 3*4096); err != nil {
				t.Fatal(err)
			}
		}, "corrupt file"},
		{"leaf page overwritten", func(t *testing.T, path string) {
			journalWithData(t, path)
			overwritePage(t, path, "leaf")
		}, "corrupt file"},
		{"branch page overwritten", func(t *testing.T, path string) {
			journalWithData(t, path)
			overwritePage(t, path, "branch")
		}, "corrupt file"},
		{"other layout version", func(t *testing.T, path string) {
			journalWithData(t, path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte("9")) })
			if err != nil {
				t.Fatal(err)
			}
		}, `layout version "9"`},
		{"a directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, "is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			tt.make(t, path)
			before := readAll(t, path)
			s, err := Open(path, Options{})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			msg, named := strings.CutPrefix(err.Error(), "open journal "+path+": ")
			if !named || !strings.Contains(msg, tt.want) {
				t.Errorf("Open: %v; want the path and %q", err, tt.want)
			}
			if after := readAll(t, path); !bytes.Equal(before, after) {
				t.Error("Open changed the file it refused")
			}
		})
	}
}

// TestOpenLocked checks that a second Open of a file in use fails, after
// the lock timeout.
func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	open(t, path, Options{})
	if s, err := Open(path, Options{}); err == nil {
		_ = s.Close()
		t.Fatal("second Open succeeded")
	} else if !strings.Contains(err.Error(), "locked by another process") {
		t.Errorf("second Open: %v", err)
	}
}

func TestOpenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "journal.db")
	s := open(t, path, Options{})
	wait(t, s.Begin(beginRec("a", "f", t0)))
	if s.Path() != path {
		t.Errorf("Path() = %q", s.Path())
	}
}

// journalWithData writes a journal of a few hundred KiB at path, with
// enough keys that its buckets have branch pages.
func journalWithData(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var last flow.Commit
	for i := range 400 {
		id := fmt.Sprintf("e%04d", i)
		s.Begin(beginRec(id, "f", t0))
		s.Step(id, &flow.StepRecord{Step: "s", Body: bytes.Repeat([]byte("x"), 600)})
		last = s.End(id, endRec(flow.Succeeded, t0))
	}
	wait(t, last)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// overwritePage overwrites the first in-use page of a type ("leaf" or
// "branch") with random bytes.
func overwritePage(t *testing.T, path, typ string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var id, size int
	err = db.View(func(tx *bolt.Tx) error {
		size = tx.DB().Info().PageSize
		// Pages 0 and 1 are the meta pages; the freelist page and free
		// pages come next, in-use ones among them.
		for i := 2; ; i++ {
			p, err := tx.Page(i)
			if err != nil || p == nil {
				return fmt.Errorf("no %s page: %v", typ, err)
			}
			if p.Type == typ {
				id = i
				return nil
			}
		}
	})
	_ = db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	if _, err := f.WriteAt(junk, int64(id*size)); err != nil {
		t.Fatal(err)
	}
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readAll reads a file, or a directory's name, to compare before and
// after.
func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return []byte(err.Error())
	}
	return b
}
