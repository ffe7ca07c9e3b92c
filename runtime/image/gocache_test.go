package image

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

func TestGoBuildCacheCompilesEachPackageOnce(t *testing.T) {
	calls := map[string]int{}
	c := &GoBuildCache{compiler: func(_ context.Context, dir, goarch string, _ io.Writer) ([]byte, error) {
		calls[goarch+" "+dir]++
		if dir == "/broken" {
			return nil, errors.New("compile failed")
		}
		return []byte("bin of " + dir), nil
	}}
	ctx := context.Background()
	for _, dir := range []string{"/echo", "/caller", "/echo", "/caller", "/echo"} {
		bin, err := c.compile(ctx, dir, "amd64", nil)
		if err != nil || string(bin) != "bin of "+dir {
			t.Fatalf("compile %s: %q, %v", dir, bin, err)
		}
	}
	if _, err := c.compile(ctx, "/echo", "arm64", nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.compile(ctx, "/broken", "amd64", nil); err == nil {
			t.Fatal("a failed compile was cached as a success")
		}
	}
	want := map[string]int{"amd64 /echo": 1, "amd64 /caller": 1, "arm64 /echo": 1, "amd64 /broken": 2}
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("%s compiled %d times, want %d", k, calls[k], n)
		}
	}
}

// TestGoBuildCacheCompilesPackagesAtOnce: two packages compile at the
// same time (each compile here waits for the other to have begun), and a
// caller of a package under way waits for it rather than compiling it
// again.
func TestGoBuildCacheCompilesPackagesAtOnce(t *testing.T) {
	started := map[string]chan struct{}{"/a": make(chan struct{}), "/b": make(chan struct{})}
	var mu sync.Mutex
	calls := map[string]int{}
	c := &GoBuildCache{compiler: func(ctx context.Context, dir, _ string, _ io.Writer) ([]byte, error) {
		mu.Lock()
		calls[dir]++
		mu.Unlock()
		close(started[dir])
		other := "/a"
		if dir == "/a" {
			other = "/b"
		}
		select {
		case <-started[other]:
		case <-time.After(10 * time.Second):
			return nil, errors.New("the other package did not start compiling meanwhile")
		}
		return []byte("bin of " + dir), nil
	}}
	var wg sync.WaitGroup
	for _, dir := range []string{"/a", "/b", "/a", "/b"} {
		wg.Go(func() {
			bin, err := c.compile(t.Context(), dir, "amd64", nil)
			if err != nil || string(bin) != "bin of "+dir {
				t.Errorf("compile %s: %q, %v", dir, bin, err)
			}
		})
	}
	wg.Wait()
	if calls["/a"] != 1 || calls["/b"] != 1 {
		t.Errorf("compiles = %v, want each package once", calls)
	}
}
