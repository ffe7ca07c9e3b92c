package image

import (
	"context"
	"errors"
	"io"
	"testing"
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
